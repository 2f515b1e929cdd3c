package view

import (
	"os"
	"reflect"
	"testing"

	"github.com/isab-vk/isab-vk/internal/pushabi"
)

// TestFramePushBlock compares frame.comp's push-constant block with
// framePush: a field renamed, reordered or retyped on one side fails it.
func TestFramePushBlock(t *testing.T) {
	src, err := os.ReadFile("shaders/frame.comp")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := pushabi.Parse(string(src))
	if err != nil {
		t.Fatalf("frame.comp: %v", err)
	}
	for _, d := range pushabi.Compare(fs, reflect.TypeOf(framePush{})) {
		t.Errorf("frame.comp and framePush differ: %s", d)
	}
}
