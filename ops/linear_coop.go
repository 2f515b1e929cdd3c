package ops

import (
	"github.com/isab-vk/isab-vk/shaders"
	"github.com/isab-vk/isab-vk/vk"
)

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

// linearCoop is matmul_coop.comp: fp16 Linear on cooperative matrices
// where the device has them (see useCoop and coopFor).
type linearCoop struct{}

func (linearCoop) name() string { return "matmul_coop" }

func (linearCoop) plan(o *Ops, l *linArgs) (linPlan, decline) {
	if !l.half {
		return linPlan{}, "fp16 only"
	}
	shape, ok := o.useCoop()
	if !ok {
		return linPlan{}, o.coopDecline()
	}
	ct, ok := o.coopFor(shape, l.K, l.x.Off, l.x.ld(), l.w.Off, l.w.ld())
	if !ok {
		return linPlan{}, "no tiles fit the shared memory, workgroup size or loop budget"
	}
	spec, err := kernelSpecFor[matmulPush](shaders.MatmulCoop, ct.spec()...)
	if err != nil {
		return linPlan{}, decline(err.Error())
	}
	spec.SubgroupSize = o.info.SubgroupSize
	p := linPlan{spec: spec, bm: int64(ct.bm()), bn: int64(ct.bn()), vecAlign: uint32(ct.VEC)}
	return p, o.storagePieces(l, &p)
}

// coopDecline says why useCoop refuses cooperative matrices.
func (o *Ops) coopDecline() decline {
	switch {
	case o.coop == coopOff:
		return "turned off (CoopMatrices(false) or " + coopEnv + "=off)"
	case len(o.info.CoopMatrix) == 0:
		return "the device has no cooperative matrices"
	case o.coop == coopAuto && o.isCPU():
		return "off by default on CPU rasterisers (" + coopEnv + "=on turns it on)"
	case !o.info.Float16 || !o.info.Storage16 || !o.info.SupportsSubgroupSize(o.info.SubgroupSize):
		return "needs fp16 arithmetic, 16-bit storage and a subgroup size the pipelines can require"
	}
	return "no fp16 cooperative-matrix shape with float32 accumulation"
}
