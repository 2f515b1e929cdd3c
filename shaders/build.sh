#!/bin/sh
# build.sh is go generate ./shaders (shaders/internal/gen), run from anywhere.
cd "$(dirname "$0")" && exec go generate .
