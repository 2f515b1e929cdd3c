package settransformer_test

import (
	"testing"

	"github.com/isab-vk/isab-vk/internal/testutil"
)

// TestMain leaves the Example functions out where there is no Vulkan
// device (see testutil.Main).
func TestMain(m *testing.M) { testutil.Main(m) }
