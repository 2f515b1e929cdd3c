package isab_test

import (
	"context"
	"fmt"
	"strconv"

	"github.com/isab-vk/isab-vk/isab"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

// Run one block on every Vulkan device at once: the batch of 3 sets is
// split across the devices (2 + 1 on two devices), each runs its shard
// from its own goroutine, and the results come back in batch order.
func ExampleLoadOn() {
	const dir = "../testdata/"
	infos, err := vk.Devices()
	if err != nil {
		fmt.Println(err)
		return
	}
	var devs []*vk.Device
	defer func() {
		for _, d := range devs {
			if err := d.Close(); err != nil {
				fmt.Println(err)
			}
		}
	}()
	for _, in := range infos {
		d, err := vk.Open(vk.Options{Device: strconv.Itoa(in.Index)})
		if err != nil {
			fmt.Println(err)
			return
		}
		devs = append(devs, d)
	}
	pool, err := isab.LoadOn(devs, dir+"odd_mask_selfattend.weights.safetensors", isab.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close() // before the devices

	in, err := isab.ReadInput(dir + "odd_mask_selfattend.input.safetensors") // x [3, 33, 24] and a mask
	if err != nil {
		fmt.Println(err)
		return
	}
	out, lat, err := pool.ForwardHost(context.Background(), in)
	if err != nil {
		fmt.Println(err)
		return
	}
	want, err := safetensors.ReadFile(dir + "odd_mask_selfattend.expected.safetensors")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range []struct {
		name string
		got  []float32
	}{{"out", out}, {"latents", lat}} {
		e, err := nmse(r.got, want, r.name)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s matches PyTorch (NMSE <= 1e-9): %v\n", r.name, e <= 1e-9)
	}
	// Output:
	// out matches PyTorch (NMSE <= 1e-9): true
	// latents matches PyTorch (NMSE <= 1e-9): true
}
