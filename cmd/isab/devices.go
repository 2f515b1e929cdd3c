package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/isab-vk/isab-vk/internal/benchkit"
	"github.com/isab-vk/isab-vk/vk"
)

// deviceJSON is one line of isab devices --json: what vk.Info holds, under
// snake_case keys, the first of them those of isab bench's records.
type deviceJSON struct {
	benchkit.DeviceInfo
	SubgroupSize                    uint32           `json:"subgroup_size"` // 0 when the device cannot report it
	SubgroupQuad                    bool             `json:"subgroup_quad"`
	SharedMemoryBytes               uint32           `json:"shared_memory_bytes"`
	MaxWorkgroupInvocations         uint32           `json:"max_workgroup_invocations"`
	MaxGroupCount                   [3]uint32        `json:"max_group_count"`
	MaxStorageBufferRange           uint64           `json:"max_storage_buffer_range"`
	MinStorageBufferOffsetAlignment uint64           `json:"min_storage_buffer_offset_alignment"`
	MaxTexelBufferElements          uint64           `json:"max_texel_buffer_elements"`
	MinTexelBufferOffsetAlignment   uint64           `json:"min_texel_buffer_offset_alignment"`
	MaxPushConstantsBytes           uint32           `json:"max_push_constants_bytes"`
	Float16                         bool             `json:"float16"`
	Storage16                       bool             `json:"storage16"`
	Int64                           bool             `json:"int64"`
	Float64                         bool             `json:"float64"`
	WriteWithoutFormat              bool             `json:"write_without_format"`
	CooperativeMatrix               []coopMatrixJSON `json:"cooperative_matrix"` // empty when none
	Timestamps                      bool             `json:"timestamps"`
	TimestampPeriodNs               float32          `json:"timestamp_period_ns"`
	DeviceMemoryBytes               uint64           `json:"device_memory_bytes"` // the largest device-local heap
	HostVisible                     bool             `json:"host_visible"`
	// Kernels, with --kernels, is per precision (fp32, fp16) the
	// implementation each step of the README shape's forward pass would
	// use and why the others decline.
	Kernels map[string][]benchkit.StepChoice `json:"kernels,omitempty"`
}

// coopMatrixJSON is one cooperative-matrix shape: C[MxN] += A[MxK] * B[KxN].
type coopMatrixJSON struct {
	M        uint32 `json:"m"`
	N        uint32 `json:"n"`
	K        uint32 `json:"k"`
	A        string `json:"a"`
	B        string `json:"b"`
	C        string `json:"c"`
	Result   string `json:"result"`
	Subgroup bool   `json:"subgroup"`
}

func deviceJSONOf(in vk.Info) deviceJSON {
	d := deviceJSON{
		DeviceInfo:   benchkit.DeviceOf(in),
		SubgroupSize: in.SubgroupSize, SubgroupQuad: in.SubgroupQuad, SharedMemoryBytes: in.SharedMemory,
		MaxWorkgroupInvocations: in.MaxWorkgroup, MaxGroupCount: in.MaxGroupCount,
		MaxStorageBufferRange: in.MaxStorageBufferRange, MinStorageBufferOffsetAlignment: in.MinStorageBufferOffsetAlignment,
		MaxTexelBufferElements: in.MaxTexelBufferElements, MinTexelBufferOffsetAlignment: in.MinTexelBufferOffsetAlignment,
		MaxPushConstantsBytes: in.MaxPushConstants, Float16: in.Float16, Storage16: in.Storage16,
		Int64: in.Int64, Float64: in.Float64, WriteWithoutFormat: in.WriteWithoutFormat,
		CooperativeMatrix: []coopMatrixJSON{}, Timestamps: in.Timestamps, TimestampPeriodNs: in.TimestampPeriod,
		DeviceMemoryBytes: in.DeviceMemory, HostVisible: in.HostVisible,
	}
	for _, s := range in.CoopMatrix {
		d.CooperativeMatrix = append(d.CooperativeMatrix, coopMatrixJSON{
			M: s.M, N: s.N, K: s.K, A: s.A, B: s.B, C: s.C, Result: s.Result, Subgroup: s.Subgroup})
	}
	return d
}

func runDevices(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("devices", "[--json] [--kernels]", stderr)
	asJSON := fs.Bool("json", false, "print one JSON object per device")
	kernels := fs.Bool("kernels", false, "open each device and say which kernel each step of the README shape (1,16384,512,8,128) would use, and why the others decline")
	if err := parse(fs, args); err != nil {
		return err
	}
	infos, err := vk.Devices()
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, in := range infos {
			d := deviceJSONOf(in)
			if *kernels {
				if d.Kernels, err = deviceChoices(in.Index); err != nil {
					return fmt.Errorf("device %d: %w", in.Index, err)
				}
			}
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
		return nil
	}
	for _, in := range infos {
		fmt.Fprintf(stdout, "%d: %s\n", in.Index, in.Name)
		row := func(k, v string) { fmt.Fprintf(stdout, "   %-26s %s\n", k, v) }
		row("vendor / type", fmt.Sprintf("%s (0x%04x:0x%04x) / %s", in.Vendor, in.VendorID, in.DeviceID, in.Type))
		row("Vulkan / driver", in.APIVersion.String()+" / "+in.Driver)
		row("subgroup size", fmt.Sprint(in.SubgroupSize))
		row("subgroup quads", fmt.Sprint(in.SubgroupQuad))
		row("shared memory", fmt.Sprintf("%d KiB", in.SharedMemory/1024))
		row("max storage buffer range", fmt.Sprintf("%d MiB", in.MaxStorageBufferRange>>20))
		row("device memory", fmt.Sprintf("%.1f GiB (host-visible: %v)", float64(in.DeviceMemory)/(1<<30), in.HostVisible))
		row("fp16 / 16-bit storage", fmt.Sprintf("%v / %v", in.Float16, in.Storage16))
		row("timestamps", fmt.Sprintf("%v (%.3g ns/tick)", in.Timestamps, in.TimestampPeriod))
		var shapes []string
		for _, s := range in.CoopMatrix {
			shapes = append(shapes, s.String())
		}
		if len(shapes) == 0 {
			shapes = []string{"none"}
		}
		row("cooperative matrix", strings.Join(shapes, ", "))
		if *kernels {
			choices, err := deviceChoices(in.Index)
			if err != nil {
				return fmt.Errorf("device %d: %w", in.Index, err)
			}
			writeDeviceChoices(stdout, choices)
		}
	}
	return nil
}
