package vk_test

import (
	"fmt"

	"github.com/isab-vk/isab-vk/vk"
)

// Open the default device (the first discrete GPU, else integrated, else
// lavapipe; ISAB_DEVICE or Options.Device picks another), copy four floats
// to a buffer on it, overwrite two of them and read all four back.
func ExampleOpen() {
	dev, err := vk.Open(vk.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		if err := dev.Close(); err != nil {
			fmt.Println(err)
		}
	}()
	info := dev.Info() // Name, Type, Vendor, limits and features
	fmt.Println("device has a name:", info.Name != "")

	buf, err := dev.NewBuffer(4 * 4) // bytes
	if err != nil {
		fmt.Println(err)
		return
	}
	defer buf.Free()
	if err := vk.Upload(buf, 0, []float32{1, 2, 3, 4}); err != nil {
		fmt.Println(err)
		return
	}
	if err := vk.Upload(buf, 2, []float32{30, 40}); err != nil { // at element 2
		fmt.Println(err)
		return
	}
	got, err := vk.Download[float32](buf, 0, 4)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, held := dev.LiveObjects()
	fmt.Println("buffer of", buf.Size(), "bytes holds", got)
	fmt.Println("device memory in buffers:", held, "bytes")
	// Output:
	// device has a name: true
	// buffer of 16 bytes holds [1 2 30 40]
	// device memory in buffers: 16 bytes
}

// A program that wants lavapipe (Mesa's CPU driver) set up as isab-vk's
// kernels are tuned, as the isab command does, asks for it before it opens
// any device: lavapipe reads its settings once, when it is loaded.
func ExampleUseLavapipeDefaults() {
	if err := vk.UseLavapipeDefaults(); err != nil {
		fmt.Println(err)
		return
	}
	dev, err := vk.Open(vk.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dev.Close()
	fmt.Println("opened:", dev.Info().Name != "")
	// Output: opened: true
}
