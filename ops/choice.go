package ops

import (
	"fmt"
	"strings"
)

// Kernel candidates. Linear and Attention each have an ordered list of
// implementations (linearImpls in linear.go, attnImpls in attention_plan.go),
// most specialised first. Each implementation says whether it supports the
// device and the operands and, when it does not, why; the first that does
// runs the op. Adding a variant is one file (its configuration and its plan
// method) and one entry in the op's list. The ops that have a single kernel
// (Softmax, AddRows, LayerNorm, Convert) pick it directly.

// Candidate is one implementation of an op as seen by one choice.
type Candidate struct {
	// Name is the implementation, named after its shader family (matmul_tex,
	// attention_cpu, ...).
	Name string `json:"name"`
	// Kernel is the shader variant it would dispatch (matmul_tex_f16, ...),
	// empty when it declines.
	Kernel string `json:"kernel,omitempty"`
	// Chosen marks the implementation that runs the op.
	Chosen bool `json:"chosen"`
	// Why says why the implementation declines the op; for one that supports
	// it but ranks below the chosen one, "supported, ranked below NAME".
	// Empty for the chosen one.
	Why string `json:"why,omitempty"`
}

// Choice is the implementation that an op chose for one call, and what the
// other candidates said.
type Choice struct {
	Op         string      `json:"op"`     // "Linear" or "Attention"
	Chosen     string      `json:"chosen"` // the chosen implementation's name; empty when none supports the call
	Kernel     string      `json:"kernel"` // the shader variant it dispatches
	Candidates []Candidate `json:"candidates"`
}

// String is the choice on one line: the chosen kernel, then each other
// candidate's reason.
func (c Choice) String() string {
	var b strings.Builder
	if c.Chosen == "" {
		fmt.Fprintf(&b, "%s: no implementation", c.Op)
	} else {
		fmt.Fprintf(&b, "%s: %s", c.Op, c.Kernel)
	}
	for _, cand := range c.Candidates {
		if !cand.Chosen {
			fmt.Fprintf(&b, "; %s: %s", cand.Name, cand.Why)
		}
	}
	return b.String()
}

// decline is an implementation's reason for not supporting a call; the empty
// decline means it supports it.
type decline string

// declinef formats a reason.
func declinef(format string, args ...any) decline { return decline(fmt.Sprintf(format, args...)) }

// choose walks the names of an ordered candidate list: try plans one
// implementation and returns its kernel name and reason (empty when it
// supports the call). The first supporter is chosen; with all, the ones
// after it are asked too (for the Explain methods, whose choices are not
// reported to OnChoice), else they are not tried. A forced implementation
// (tuning.force naming one of names) is the only one tried.
func (o *Ops) choose(op string, names []string, all bool, try func(i int) (kernel string, why decline)) (Choice, int) {
	c := Choice{Op: op}
	chosen := -1
	forced := -1
	for i, n := range names {
		if n == o.tune.force {
			forced = i
		}
	}
	for i, n := range names {
		cand := Candidate{Name: n}
		switch {
		case forced >= 0 && i != forced:
			cand.Why = "not tried: " + o.tune.force + " is forced"
		case o.tune.off[n]:
			cand.Why = "turned off"
		case chosen >= 0 && !all:
			cand.Why = "not tried: " + names[chosen] + " ranks higher"
		default:
			k, why := try(i)
			switch {
			case why != "":
				cand.Why = string(why)
			case chosen >= 0:
				cand.Kernel, cand.Why = k, "supported, ranked below "+names[chosen]
			default:
				chosen = i
				cand.Kernel, cand.Chosen = k, true
				c.Chosen, c.Kernel = n, k
			}
		}
		c.Candidates = append(c.Candidates, cand)
	}
	if o.onChoice != nil && !all {
		o.onChoice(c)
	}
	return c, chosen
}

// noImpl is the error of a call that no candidate supports.
func (c Choice) noImpl() error {
	var why []string
	for _, cand := range c.Candidates {
		why = append(why, cand.Name+": "+cand.Why)
	}
	return fmt.Errorf("ops: %s: no kernel supports this call (%s)", c.Op, strings.Join(why, "; "))
}

// OnChoice makes Linear and Attention (and AttentionSteps) report each
// choice of implementation to f as they record, so that callers can learn
// which kernel ran each step and why the others declined. f runs on the
// recording goroutine and must not call back into Ops.
func OnChoice(f func(Choice)) Option {
	return func(o *Ops) { o.onChoice = f }
}

// tuning holds the knobs that tests change on one Ops (withTuning), never
// package state: the configurations of the CPU attention kernels, the
// implementations turned off or forced, and a forced configuration of the
// generic attention kernel.
type tuning struct {
	attnCPU attnCPUTuning
	attnTex attnTexTuning
	// off names implementations (Candidate.Name) that are not tried.
	off map[string]bool
	// force names the only implementation tried for the op it belongs to.
	force string
	// attnGeneric, when set, forces attention.comp with this configuration.
	attnGeneric func(nq, dh int) attnConfig
}

// defaultTuning is what New starts from.
func defaultTuning() tuning {
	return tuning{attnCPU: defaultAttnCPUTuning, attnTex: defaultAttnTexTuning}
}

// withTuning changes the tuning of one Ops (tests).
func withTuning(f func(t *tuning)) Option {
	return func(o *Ops) { f(&o.tune) }
}

// turnOff is the Option that turns implementations off by name (tests).
func turnOff(names ...string) Option {
	return withTuning(func(t *tuning) {
		if t.off == nil {
			t.off = map[string]bool{}
		}
		for _, n := range names {
			t.off[n] = true
		}
	})
}

// forceImpl is the Option that forces one implementation by name (tests).
func forceImpl(name string) Option {
	return withTuning(func(t *tuning) { t.force = name })
}
