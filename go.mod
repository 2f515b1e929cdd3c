module github.com/isab-vk/isab-vk

go 1.22

require (
	github.com/go-gl/glfw/v3.3/glfw v0.0.0-20250301202403-da16c1255728
	github.com/vulkan-go/vulkan v0.0.0-20221209234627-c0a353ae26c8
)
