package ops

import (
	"os"
	"strings"

	"github.com/isab-vk/isab-vk/vk"
)

// coopEnv names the environment variable that overrides where fp16 Linear
// and Attention run on cooperative matrices: "on" wherever the device supports
// them (CPU devices included), "off" nowhere. Unset, empty or "auto" means
// on GPUs only (see Ops.useCoop).
const coopEnv = "ISAB_COOPMAT"

// coopMode is how Ops chooses the cooperative-matrix kernels.
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

// CoopMatrices turns the cooperative-matrix kernels of fp16 Linear and
// Attention on (wherever the device reports a usable
// VK_KHR_cooperative_matrix shape, CPU devices included) or off, over the
// default: on for GPUs, off for CPU rasterisers, whose other kernels are
// faster, unless the ISAB_COOPMAT environment variable says on or off.
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

// CoopShape returns the cooperative-matrix shape that the fp16 Linear and
// Attention kernels would use on a device described by info: fp16 x fp16 products
// accumulated in float32 at subgroup scope, sides of at most 64; among
// several, the one with the most multiply-adds per operation (ties: the
// first listed). ok is false when the device reports none.
func CoopShape(info vk.Info) (shape vk.CoopMatrixShape, ok bool) {
	for _, s := range info.CoopMatrix {
		if !s.Subgroup || s.A != "f16" || s.B != "f16" || s.C != "f32" || s.Result != "f32" ||
			s.M == 0 || s.N == 0 || s.K == 0 || s.M > 64 || s.N > 64 || s.K > 64 {
			continue
		}
		if !ok || s.M*s.N*s.K > shape.M*shape.N*shape.K {
			shape, ok = s, true
		}
	}
	return shape, ok
}

// useCoop reports whether fp16 Linear and Attention run on cooperative
// matrices (matmul_coop.comp, attention_coop.comp), and on which shape:
// the device must report a usable shape (CoopShape), fp16 arithmetic,
// 16-bit storage and a subgroup size that the kernels' workgroups (whole
// subgroups of it) can require (vk.Info.SupportsSubgroupSize), and the
// mode must allow it (GPUs by default, see CoopMatrices).
func (o *Ops) useCoop() (vk.CoopMatrixShape, bool) {
	if o.coop == coopOff || (o.coop == coopAuto && o.isCPU()) {
		return vk.CoopMatrixShape{}, false
	}
	if !o.info.Float16 || !o.info.Storage16 || !o.info.SupportsSubgroupSize(o.info.SubgroupSize) {
		return vk.CoopMatrixShape{}, false
	}
	return CoopShape(o.info)
}
