package ops

import (
	"testing"

	"github.com/isab-vk/isab-vk/vk"
)

// TestSubgroupSizeConfigs checks that the configurations which depend on
// the subgroup size ask for it (attnConfig.subgroup, passed on as
// vk.KernelSpec.SubgroupSize) and decline, falling back to the portable
// kernels, on a device that may run another size than it reports and
// cannot require one: attention_cpu's shared row loads (8 lanes),
// attention_tex and matmul_tex (quads in whole subgroups) and the
// cooperative-matrix kernels (see TestCoopMatricesOption).
func TestSubgroupSizeConfigs(t *testing.T) {
	fixed := vk.Info{SubgroupSize: 8, MinSubgroupSize: 8, MaxSubgroupSize: 8, SubgroupQuad: true, Int64: true,
		MaxWorkgroup: 1024, MinTexelBufferOffsetAlignment: 16, MaxTexelBufferElements: 1 << 27}
	varying := fixed
	varying.MinSubgroupSize, varying.MaxSubgroupSize = 4, 32
	required := varying
	required.RequiredSubgroupSize = true
	unknown := fixed
	unknown.MinSubgroupSize, unknown.MaxSubgroupSize = 0, 0
	// Q at an offset of 4 floats: vec4 loads, which share rows by default.
	const dh = 64
	a := AttnArgs{Q: Mat{Off: 4, Cols: dh}, Out: Mat{Cols: dh}, Sources: []KVSource{{KV: Mat{Cols: 2 * dh}, VOff: dh, NK: 33}},
		Batch: 1, NQ: 7, Heads: 1, DimHead: dh}
	for _, c := range []struct {
		name    string
		info    vk.Info
		promise bool // the reported size 8 can be promised
	}{
		{"fixed 8", fixed, true},
		{"4..32 that cannot require a size", varying, false},
		{"4..32 that can require one", required, true},
		{"no size range reported", unknown, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := &Ops{info: c.info, cpu: true, align: 16, maxRange: 1 << 27, tune: defaultTuning()}
			cfg, ok := o.attnCPUFor(a, a.Sources)
			if !ok || cfg.cpu == nil {
				t.Fatal("attnCPUFor declined")
			}
			if share := o.tune.attnCPU.Share && c.promise; cfg.cpu.Share != share || (cfg.subgroup == 8) != share || (!share && cfg.subgroup != 0) {
				t.Errorf("attention_cpu: Share %v, subgroup %d; want Share %v", cfg.cpu.Share, cfg.subgroup, share)
			}
			tcfg, _, _, tex := o.attnTexFor(a, a.Sources)
			if tex != c.promise || (tex && tcfg.subgroup != 8) {
				t.Errorf("attention_tex: taken %v with subgroup %d, want taken %v with 8", tex, tcfg.subgroup, c.promise)
			}
			if _, lin := o.linTexConfig(64, 64, 64); lin != c.promise {
				t.Errorf("matmul_tex: taken %v, want %v", lin, c.promise)
			}
		})
	}
}
