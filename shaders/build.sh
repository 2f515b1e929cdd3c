#!/bin/sh
# build.sh compiles every shaders/*.comp to the .spv beside it with the exact
# command line that shaders_test.go checks against. Run from anywhere.
set -eu
cd "$(dirname "$0")"
for src in *.comp; do
	out="${src%.comp}.spv"
	echo "glslc --target-env=vulkan1.1 -O -o $out $src"
	glslc --target-env=vulkan1.1 -O -o "$out" "$src"
	if command -v spirv-val >/dev/null 2>&1; then
		spirv-val --target-env vulkan1.1 "$out"
	fi
done
