package ops

import (
	"os"
	"strings"

	"github.com/isab-vk/isab-vk/vk"
)

// coopEnv names the environment variable that overrides where Linear runs
// fp16 products on cooperative matrices: "on" wherever the device supports
// them (CPU devices included), "off" nowhere. Unset, empty or "auto" means
// on GPUs only (see Ops.useCoop).
const coopEnv = "ISAB_COOPMAT"

// coopMode is how Ops chooses matmul_coop.comp.
type coopMode int

const (
	coopAuto coopMode = iota // GPUs that report a usable shape
	coopOn                   // every device that reports a usable shape
	coopOff                  // never
)

// parseCoopMode reads coopEnv's value; anything but on, off, auto and ""
// counts as auto, as an unknown value must not change results.
func parseCoopMode(s string) coopMode {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "1", "true":
		return coopOn
	case "off", "0", "false":
		return coopOff
	}
	return coopAuto
}

// CoopMatrices turns the cooperative-matrix Linear kernel for fp16 on
// (wherever the device reports a usable VK_KHR_cooperative_matrix shape,
// CPU devices included) or off, over the default: on for GPUs, off for
// CPU rasterisers, whose other kernels are faster, unless the
// ISAB_COOPMAT environment variable says on or off.
func CoopMatrices(use bool) Option {
	return func(o *Ops) {
		if use {
			o.coop = coopOn
		} else {
			o.coop = coopOff
		}
	}
}

func coopModeFromEnv() coopMode { return parseCoopMode(os.Getenv(coopEnv)) }

// CoopShape returns the cooperative-matrix shape that the fp16 Linear
// kernel would use on a device described by info: fp16 x fp16 products
// accumulated in float32 at subgroup scope, sides of at most 64; among
// several, the one with the most multiply-adds per operation (ties: the
// first listed). ok is false when the device reports none.
func CoopShape(info vk.Info) (shape vk.CoopMatrixShape, ok bool) { return coopShape(info) }

func coopShape(info vk.Info) (vk.CoopMatrixShape, bool) {
	var best vk.CoopMatrixShape
	found := false
	for _, s := range info.CoopMatrix {
		if !s.Subgroup || s.A != "f16" || s.B != "f16" || s.C != "f32" || s.Result != "f32" ||
			s.M == 0 || s.N == 0 || s.K == 0 || s.M > 64 || s.N > 64 || s.K > 64 {
			continue
		}
		if !found || s.M*s.N*s.K > best.M*best.N*best.K {
			best, found = s, true
		}
	}
	return best, found
}

// coopTiles configures matmul_coop.comp: the cooperative-matrix shape, SM x
// SN subgroups per workgroup, TM x TN accumulators per subgroup, KT steps
// of the shape's K per staged tile, WG invocations and VEC (4: loads of
// four halves).
type coopTiles struct {
	shape                       vk.CoopMatrixShape
	SM, SN, TM, TN, KT, WG, VEC int
}

func (c coopTiles) bm() int { return c.SM * c.TM * int(c.shape.M) }
func (c coopTiles) bn() int { return c.SN * c.TN * int(c.shape.N) }
func (c coopTiles) bk() int { return c.KT * int(c.shape.K) }

// sharedBytes is the kernel's shared memory: the staged X and W tiles (rows
// padded by 8 halves) and one fp32 accumulator scratch per subgroup.
func (c coopTiles) sharedBytes() int {
	return 2*(c.bm()+c.bn())*(c.bk()+8) + 4*int(c.shape.M*c.shape.N)*c.SM*c.SN
}

func (c coopTiles) spec() []uint32 {
	return []uint32{c.shape.M, c.shape.N, c.shape.K, uint32(c.SM), uint32(c.SN), uint32(c.TM), uint32(c.TN),
		uint32(c.KT), uint32(c.WG), uint32(c.VEC)}
}

// useCoop reports whether Linear runs fp16 products on matmul_coop.comp:
// the device must report a usable shape (coopShape), fp16 arithmetic,
// 16-bit storage and its subgroup size, and the mode must allow it (GPUs
// by default, see CoopMatrices).
func (o *Ops) useCoop() (vk.CoopMatrixShape, bool) {
	if o.coop == coopOff || (o.coop == coopAuto && o.isCPU()) {
		return vk.CoopMatrixShape{}, false
	}
	if !o.info.Float16 || !o.info.Storage16 || o.info.SubgroupSize == 0 {
		return vk.CoopMatrixShape{}, false
	}
	return coopShape(o.info)
}

// coopFor picks matmul_coop's configuration for a product with inner size
// k whose x and w views start at xoff and woff with row strides ldx and
// ldw. Each subgroup computes about 32 x 32 outputs and a workgroup 2 x 2
// subgroups; the K tile is about 32 wide. The configuration shrinks to fit
// the device's shared memory and workgroup size, and ok is false when even
// one subgroup of one accumulator does not fit, or (on CPU devices) when
// the K loop would run past lavapipe's loop budget.
func (o *Ops) coopFor(shape vk.CoopMatrixShape, k, xoff, ldx, woff, ldw int) (coopTiles, bool) {
	sg := int(o.info.SubgroupSize)
	if shape.M == 0 || shape.N == 0 || shape.K == 0 || sg == 0 {
		return coopTiles{}, false
	}
	c := coopTiles{
		shape: shape,
		SM:    2, SN: 2,
		TM: max(1, 32/int(shape.M)), TN: max(1, 32/int(shape.N)),
		KT: max(1, 32/int(shape.K)),
	}
	if (xoff|ldx|woff|ldw|k)%4 == 0 {
		c.VEC = 4
	} else {
		c.VEC = 1
	}
	fits := func() bool {
		c.WG = c.SM * c.SN * sg
		return c.sharedBytes() <= int(o.info.SharedMemory) && c.WG <= int(o.info.MaxWorkgroup)
	}
	for !fits() {
		switch {
		case c.SN > 1:
			c.SN--
		case c.SM > 1:
			c.SM--
		case c.KT > 1:
			c.KT--
		case c.TN > 1:
			c.TN--
		case c.TM > 1:
			c.TM--
		default:
			return c, false
		}
	}
	if o.loopBudget > 0 {
		// Per K step: the step itself, the staging loops over both tiles,
		// and KT coop steps (counted in case they stay loops).
		stage := ceilDiv(int64((c.bm()+c.bn())*c.bk()), int64(c.WG))
		if ceilDiv(int64(k), int64(c.bk()))*(2+stage+int64(c.KT)) > o.loopBudget {
			return c, false
		}
	}
	return c, true
}
