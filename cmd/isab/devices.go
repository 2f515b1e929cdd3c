package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/isab-vk/isab-vk/vk"
)

func runDevices(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("devices", "[--json]", stderr)
	asJSON := fs.Bool("json", false, "print one JSON object per device")
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
			if err := enc.Encode(in); err != nil {
				return err
			}
		}
		return nil
	}
	for _, in := range infos {
		fmt.Fprintf(stdout, "%d: %s\n", in.Index, in.Name)
		row := func(k, v string) { fmt.Fprintf(stdout, "   %-26s %s\n", k, v) }
		row("vendor / type", fmt.Sprintf("%s (0x%04x:0x%04x) / %s", in.Vendor, in.VendorID, in.DeviceID, in.Type))
		row("Vulkan / driver", in.APIVersion+" / "+in.Driver)
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
	}
	return nil
}
