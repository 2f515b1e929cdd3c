#!/usr/bin/env bash
# swiftshader.sh: Google's SwiftShader, a second Vulkan implementation for the
# tests, beside Mesa's lavapipe.
#
#   scripts/swiftshader.sh [--offline] icd              prints the ICD file
#   scripts/swiftshader.sh [--offline] run PROGRAM ARGS  PROGRAM with SwiftShader
#       as the only Vulkan driver (VK_ICD_FILENAMES)
#   scripts/swiftshader.sh [--offline] both PROGRAM ARGS PROGRAM with lavapipe
#       and SwiftShader side by side (two devices in one process)
#
# Why: every kernel must be right on more than one implementation. SwiftShader
# (the CPU Vulkan driver Chromium ships) compiles with its own JIT (Subzero),
# not Mesa's LLVM path, runs subgroups of 4, and has no fp16 and no 16-bit
# storage, so it checks what lavapipe cannot. It is far slower than lavapipe:
# a correctness target, not a speed one.
#
# Debian has no SwiftShader package. The first call downloads the npm package
# @sparticuz/chromium (a Chromium build for AWS Lambda, about 70 MB) from the
# npm registry with curl, checks its SHA-256, takes bin/swiftshader.tar.br out
# of it (brotli, then tar) and keeps only the driver and its ICD file (about
# 6 MB) under ${ISAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/isab-vk}/swiftshader-<version>.
# The download is removed afterwards. With --offline nothing is downloaded:
# the script exits with status 3 when the driver is not there yet (the tests
# and make test use that to skip, saying so).
set -euo pipefail
version=153.0.0
sha256=20e5656fcdcf4118ede85edfb9d6bb9cc1bbb7ffb8b75622fffbcf36a835c3c0
registry=${NPM_REGISTRY:-https://registry.npmjs.org}
base=${ISAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/isab-vk}
dir=$base/swiftshader-$version
icd=$dir/vk_swiftshader_icd.json
lvp=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json

offline=0
if [[ ${1:-} == --offline ]]; then
  offline=1
  shift
fi
if [[ $# -lt 1 ]]; then
  echo "usage: swiftshader.sh [--offline] icd|run|both ARGS..." >&2
  exit 2
fi

fetch() {
  if [[ $(uname -m) != x86_64 ]]; then
    echo "swiftshader.sh: only x86_64 is supported (the npm package is an x86_64 build)" >&2
    exit 1
  fi
  for tool in curl brotli tar sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || { echo "swiftshader.sh: needs $tool (scripts/deps.sh --swiftshader installs it)" >&2; exit 1; }
  done
  mkdir -p "$base"
  # tmp is global: the EXIT trap runs after fetch returns.
  tmp=$(mktemp -d "$base/.swiftshader.XXXXXX")
  trap 'rm -rf "${tmp:-}"' EXIT
  local url=$registry/@sparticuz/chromium/-/chromium-$version.tgz
  echo "swiftshader.sh: fetching SwiftShader from $url (about 70 MB; 6 MB kept in $dir)" >&2
  curl -fsSL --retry 2 -o "$tmp/pkg.tgz" "$url"
  local got
  got=$(sha256sum "$tmp/pkg.tgz" | cut -d' ' -f1)
  if [[ $got != "$sha256" ]]; then
    echo "swiftshader.sh: $url has SHA-256 $got, want $sha256" >&2
    exit 1
  fi
  tar -xzf "$tmp/pkg.tgz" -C "$tmp" package/bin/swiftshader.tar.br package/LICENSE
  mkdir -p "$tmp/out"
  brotli -d -c "$tmp/package/bin/swiftshader.tar.br" | tar -x -C "$tmp/out" libvk_swiftshader.so vk_swiftshader_icd.json
  cp "$tmp/package/LICENSE" "$tmp/out/LICENSE.npm-package"
  # The ICD file names the driver relative to itself; keep it that way.
  grep -q '"library_path": *"./libvk_swiftshader.so"' "$tmp/out/vk_swiftshader_icd.json" || {
    echo "swiftshader.sh: unexpected ICD file in the package:" >&2
    cat "$tmp/out/vk_swiftshader_icd.json" >&2
    exit 1
  }
  rm -rf "$dir"
  mv "$tmp/out" "$dir"
}

if [[ ! -f $icd || ! -f $dir/libvk_swiftshader.so ]]; then
  if [[ $offline == 1 ]]; then
    echo "swiftshader.sh: no SwiftShader under $dir yet (run scripts/swiftshader.sh icd once)" >&2
    exit 3
  fi
  fetch
fi

cmd=$1
shift
case "$cmd" in
  icd) echo "$icd" ;;
  run)
    [[ $# -ge 1 ]] || { echo "swiftshader.sh run: no program" >&2; exit 2; }
    export VK_ICD_FILENAMES=$icd
    exec "$@"
    ;;
  both)
    [[ $# -ge 1 ]] || { echo "swiftshader.sh both: no program" >&2; exit 2; }
    [[ -f $lvp ]] || { echo "swiftshader.sh both: no lavapipe ICD at $lvp" >&2; exit 1; }
    export VK_ICD_FILENAMES=$lvp:$icd
    exec "$@"
    ;;
  *)
    echo "swiftshader.sh: unknown command $cmd (want icd, run or both)" >&2
    exit 2
    ;;
esac
