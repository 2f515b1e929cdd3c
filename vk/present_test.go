package vk

import (
	"errors"
	"strings"
	"testing"
	"unsafe"
)

// loadTest loads the Vulkan loader, skipping the test where there is none.
func loadTest(t *testing.T) {
	t.Helper()
	if err := load(); err != nil {
		if errors.Is(err, ErrNoVulkan) {
			t.Skipf("no Vulkan: %v", err)
		}
		t.Fatal(err)
	}
}

// TestOpenPresenterRefuses checks the options that OpenPresenter refuses
// before it creates anything.
func TestOpenPresenterRefuses(t *testing.T) {
	loadTest(t)
	surface := func(unsafe.Pointer) (unsafe.Pointer, int32) {
		t.Error("the surface function was called")
		return nil, 0
	}
	for _, c := range []struct {
		name string
		opts PresentOptions
		want string
	}{
		{"no surface function", PresentOptions{Extensions: []string{"VK_KHR_surface"}}, "PresentOptions.Surface is nil"},
		{"no extensions", PresentOptions{Surface: surface}, "names no instance extensions"},
		{"unknown extension", PresentOptions{Extensions: []string{"VK_KHR_no_such_surface"}, Surface: surface},
			"lacks VK_KHR_no_such_surface, which the window's surface needs"},
		{"negative wait", PresentOptions{Extensions: []string{"VK_KHR_surface"}, Surface: surface, WaitTimeout: -1}, "negative"},
	} {
		p, err := OpenPresenter(c.opts)
		if err == nil {
			p.Close()
			t.Errorf("%s: OpenPresenter succeeded", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to say %q", c.name, err, c.want)
		}
	}
}

// TestOpenPresenterSurfaceError checks that a surface function's failure
// comes back as a named Vulkan error, from an instance that had the
// requested extension.
func TestOpenPresenterSurfaceError(t *testing.T) {
	loadTest(t)
	if !hasName(instanceExtensions(), "VK_KHR_surface") {
		t.Skip("the Vulkan loader offers no VK_KHR_surface")
	}
	validation := hasName(instanceLayers(), validationLayer)
	ValidationMessages()
	called := false
	p, err := OpenPresenter(PresentOptions{
		Extensions: []string{"VK_KHR_surface"},
		Validation: validation,
		Surface: func(instance unsafe.Pointer) (unsafe.Pointer, int32) {
			called = instance != nil
			return nil, -7 // VK_ERROR_EXTENSION_NOT_PRESENT
		},
	})
	if err == nil {
		p.Close()
		t.Fatal("OpenPresenter succeeded with a failing surface function")
	}
	if !called {
		t.Error("the surface function was not called with an instance")
	}
	var re *ResultError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "creating the window's surface") ||
		!strings.Contains(err.Error(), "VK_ERROR_EXTENSION_NOT_PRESENT") {
		t.Errorf("error %v: want a ResultError naming VK_ERROR_EXTENSION_NOT_PRESENT while creating the window's surface", err)
	}
	for _, m := range ValidationMessages() {
		t.Errorf("validation: %s", m)
	}
}
