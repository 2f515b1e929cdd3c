// Package settransformer runs the Set Transformer of Lee et al. (2019) with
// the semantics and state_dict keys of the paper authors' modules (MAB, SAB,
// ISAB, PMA and the SetTransformer of their amortised clustering
// experiment) on any Vulkan device, with the same kernels (package ops) as
// package isab:
//
//	MAB(Q, K):  Q' = fc_q(Q), K' = fc_k(K), V' = fc_v(K)
//	            O = concat_h(Q'_h + softmax(Q'_h K'_h^T / sqrt(dim)) V'_h)
//	            O = ln0(O); O = O + relu(fc_o(O)); O = ln1(O)
//	SAB(X)    = MAB(X, X)
//	ISAB(X)   = MAB1(X, MAB0(I, X))
//	PMA(X)    = MAB(S, X)
//	SetTransformer(X) = Linear(SAB(SAB(PMA(ISAB(ISAB(X))))))
//
// where the heads split the dim features into equal chunks, the attention
// scale uses the full width dim, and the LayerNorms (eps 1e-5) are present
// only when the model has them. Weights load from a safetensors file holding
// the PyTorch state_dict(); tensors stay on the device, and one forward pass
// is one recorded vk.Sequence.
package settransformer

import (
	"fmt"

	"github.com/isab-vk/isab-vk/safetensors"
)

// The kinds of model, as the weights' __metadata__ "kind" names them.
const (
	KindModel = "settransformer-model" // enc = [ISAB, ISAB], dec = [PMA, SAB, SAB, Linear]
	KindISAB  = "settransformer-isab"  // one ISAB: keys I, mab0.*, mab1.*
	KindSAB   = "settransformer-sab"   // one SAB: keys mab.*
	KindPMA   = "settransformer-pma"   // one PMA: keys S, mab.*
)

// Kinds lists the kinds this package runs.
func Kinds() []string { return []string{KindModel, KindISAB, KindSAB, KindPMA} }

// IsKind reports whether kind is one of Kinds.
func IsKind(kind string) bool {
	for _, k := range Kinds() {
		if k == kind {
			return true
		}
	}
	return false
}

// LayerNormEps is the eps of every LayerNorm (PyTorch's default).
const LayerNormEps = 1e-5

// Config is the shape of a model.
type Config struct {
	Kind     string
	DimIn    int  // width of the input x
	Dim      int  // hidden width (dim_V), split over the heads
	DimOut   int  // width of the output: Dim, or the final Linear's for KindModel
	Heads    int  // attention heads; Dim is a multiple of it
	NumInds  int  // inducing points of each ISAB (KindModel, KindISAB), else 0
	NumSeeds int  // seeds of the PMA (KindModel, KindPMA), else 0
	LN       bool // the MABs have LayerNorms ln0 and ln1
}

// String formats the configuration for messages.
func (c Config) String() string {
	return fmt.Sprintf("%s dim_in=%d dim=%d dim_out=%d heads=%d num_inds=%d seeds=%d ln=%v",
		c.Kind, c.DimIn, c.Dim, c.DimOut, c.Heads, c.NumInds, c.NumSeeds, c.LN)
}

// OutRows is the number of output rows per set for sets of n elements: n
// for an ISAB or SAB, the seeds for a PMA or the whole model.
func (c Config) OutRows(n int) int {
	if c.Kind == KindModel || c.Kind == KindPMA {
		return c.NumSeeds
	}
	return n
}

// Options supply the configuration that the weights cannot show; a zero
// field means "from the weights' __metadata__", and a set field wins over it.
type Options struct {
	Kind    string // one of Kinds; default: metadata "kind"
	Heads   int    // default: metadata "heads" (required one way or the other)
	NumInds int    // if set, must match the inducing points (or a PMA's seeds) the weights hold
	// LN, when non-nil, says whether the MABs have LayerNorms; default:
	// metadata "ln", else whether the weights hold ln0/ln1 keys.
	LN *bool
}

// Bool returns a pointer to v, for Options.LN.
func Bool(v bool) *bool { return &v }

func metaInt(meta map[string]string, key string) (int, bool, error) {
	v, ok, err := safetensors.MetaInt(meta, key)
	if err != nil {
		return 0, false, fmt.Errorf("settransformer: %w", err)
	}
	return v, ok, nil
}

func metaBool(meta map[string]string, key string) (bool, bool, error) {
	v, ok, err := safetensors.MetaBool(meta, key)
	if err != nil {
		return false, false, fmt.Errorf("settransformer: %w", err)
	}
	return v, ok, nil
}
