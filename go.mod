module github.com/isab-vk/isab-vk

go 1.22

require github.com/vulkan-go/vulkan v0.0.0-20221209234627-c0a353ae26c8 // indirect
