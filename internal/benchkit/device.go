package benchkit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/isab-vk/isab-vk/vk"
)

// DeviceInfo is what a benchmark record says about the device it ran on.
// Its keys are also the first keys of every object of isab devices --json.
type DeviceInfo struct {
	DeviceIndex int    `json:"device_index"` // position in vk.Devices
	Device      string `json:"device"`       // the device's name
	DeviceType  string `json:"device_type"`  // discrete, integrated, virtual, cpu or other
	Vendor      string `json:"vendor"`
	VendorID    uint32 `json:"vendor_id"`
	DeviceID    uint32 `json:"device_id"`
	// Driver is the driver's name and information string as the driver
	// reports them (VK_KHR_driver_properties), or "version 0x..." with
	// the raw driverVersion where it reports no name.
	Driver string `json:"driver"`
	// DriverName and DriverVersion are the same apart: the driver's name
	// (driverName) and its version as the driver writes it (driverInfo),
	// else the raw driverVersion in hex; both empty where unknown.
	DriverName    string `json:"driver_name"`
	DriverVersion string `json:"driver_version"`
	APIVersion    string `json:"api_version"` // Vulkan version of the device
	// CPUModel is the host CPU's model name (/proc/cpuinfo) for a device
	// of type cpu, such as lavapipe; empty for other devices.
	CPUModel string `json:"cpu_model"`
}

// DeviceOf describes the device that in reports.
func DeviceOf(in vk.Info) DeviceInfo {
	d := DeviceInfo{
		DeviceIndex: in.Index, Device: in.Name, DeviceType: in.Type.String(), Vendor: in.Vendor,
		VendorID: in.VendorID, DeviceID: in.DeviceID, Driver: in.Driver, APIVersion: in.APIVersion.String(),
		DriverName: in.DriverName, DriverVersion: in.DriverInfo,
	}
	if d.DriverVersion == "" {
		d.DriverVersion = fmt.Sprintf("0x%x", in.DriverVersion)
	}
	if in.Type == vk.DeviceCPU {
		d.CPUModel = CPUModel()
	}
	return d
}

var cpuModel = sync.OnceValue(func() string {
	if runtime.GOOS != "linux" {
		return ""
	}
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	return parseCPUModel(f)
})

// CPUModel is the "model name" of the host's first CPU in /proc/cpuinfo,
// or "" where there is none (other systems, some ARM kernels).
func CPUModel() string { return cpuModel() }

// parseCPUModel finds the first "model name" line of a /proc/cpuinfo.
func parseCPUModel(r io.Reader) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
