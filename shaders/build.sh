#!/bin/sh
# build.sh compiles every shaders/*.comp to the .spv beside it with the exact
# command line that shaders_test.go checks against, and each source whose
# header has a line starting "// variants: f16" also to X_f16.spv with -DF16
# (see README.md). Sources with a line starting "// compiler:
# GL_KHR_cooperative_matrix" are compiled and validated with Debian 13's
# glslc and spirv-val (scripts/trixie.sh fetches them on first use), as
# Debian 12's are too old for that extension. Run from anywhere.
set -eu
cd "$(dirname "$0")"
build() {
	glslc=glslc
	val=spirv-val
	if grep -q '^// compiler: GL_KHR_cooperative_matrix' "$3"; then
		glslc="../scripts/trixie.sh glslc"
		val="../scripts/trixie.sh spirv-val"
	fi
	echo "$glslc --target-env=vulkan1.1 -O $1-o $2 $3"
	# shellcheck disable=SC2086 # $1 is empty or one flag and a space; $glslc is a command with arguments
	$glslc --target-env=vulkan1.1 -O $1-o "$2" "$3"
	if [ "$val" != spirv-val ] || command -v spirv-val >/dev/null 2>&1; then
		$val --target-env vulkan1.1 "$2"
	fi
}
for src in *.comp; do
	build "" "${src%.comp}.spv" "$src"
	if grep -q '^// variants: f16' "$src"; then
		build "-DF16 " "${src%.comp}_f16.spv" "$src"
	fi
done
