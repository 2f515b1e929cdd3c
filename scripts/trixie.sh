#!/usr/bin/env bash
# trixie.sh: Debian 13 (trixie) tools for the cooperative-matrix kernels, on
# a Debian 12 machine, without installing anything system-wide.
#
#   scripts/trixie.sh [--offline] glslc ARGS...      trixie's glslc
#   scripts/trixie.sh [--offline] spirv-val ARGS...  trixie's spirv-val
#   scripts/trixie.sh [--offline] run PROGRAM ARGS... PROGRAM with trixie's
#       C library, Vulkan loader and validation layer, and lavapipe from
#       trixie-backports (Mesa 26), which has VK_KHR_cooperative_matrix;
#       Debian 12's lavapipe (Mesa 22.3) does not, and its validation layer
#       does not know the extension
#   scripts/trixie.sh [--offline] dir                prints the tool folder
#
# Why: shaders/matmul_coop.comp and attention_coop.comp use
# GL_KHR_cooperative_matrix, which needs glslang 13 or later (Debian 12's
# glslc has glslang 11.13 and its spirv-val rejects the SPIR-V), and testing
# them on a CPU needs a lavapipe that implements cooperative matrices.
#
# The first call downloads glslc, spirv-tools, vulkan-validationlayers and
# mesa-vulkan-drivers with everything they depend on (about 73 MB to download;
# 262 MB unpacked, of which LLVM is 124 MB, with Mesa's GPU drivers removed) using
# apt-get with a private state and sources list (trixie and trixie-backports
# from deb.debian.org), so apt checks the archive signatures with Debian's
# keyring as usual, and unpacks them under ${ISAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/isab-vk}/trixie.
# Programs run through trixie's dynamic loader, since bookworm's C library is
# older than those binaries need. With --offline nothing is downloaded: the
# script exits with status 3 when the tools are not there yet (the tests use
# that to skip).
set -euo pipefail
cache=${ISAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/isab-vk}/trixie
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$cache/root
lib=$root/usr/lib/x86_64-linux-gnu

offline=0
if [[ ${1:-} == --offline ]]; then
  offline=1
  shift
fi
if [[ $# -lt 1 ]]; then
  echo "usage: trixie.sh [--offline] glslc|spirv-val|run|dir ARGS..." >&2
  exit 2
fi

fetch() {
  if [[ $(uname -m) != x86_64 ]]; then
    echo "trixie.sh: only x86_64 is supported" >&2
    exit 1
  fi
  for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null 2>&1 || { echo "trixie.sh: needs $tool (Debian or Ubuntu)" >&2; exit 1; }
  done
  # tmp is global: the EXIT trap runs after fetch returns.
  tmp=$(mktemp -d "${cache%/*}/.trixie.XXXXXX")
  trap 'rm -rf "${tmp:-}"' EXIT
  mkdir -p "$tmp"/{state/lists/partial,archives/partial,etc,root}
  touch "$tmp/state/status"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  cat >"$tmp/etc/sources.list" <<EOF
deb [signed-by=$keyring] $mirror trixie main
deb [signed-by=$keyring] $mirror trixie-backports main
EOF
  local opts=(
    -o "Dir::State=$tmp/state" -o "Dir::State::status=$tmp/state/status"
    -o "Dir::Cache=$tmp" -o "Dir::Cache::archives=$tmp/archives"
    -o "Dir::Etc::SourceList=$tmp/etc/sources.list" -o "Dir::Etc::SourceParts=$tmp/etc"
    -o "Dir::Etc::Preferences=$tmp/etc/none" -o "Dir::Etc::PreferencesParts=$tmp/etc"
    -o APT::Architecture=amd64 -o APT::Install-Recommends=false -o Debug::NoLocking=1
  )
  echo "trixie.sh: fetching trixie's glslc, spirv-tools, validation layer and lavapipe into $cache" >&2
  apt-get "${opts[@]}" -q update >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
  apt-get "${opts[@]}" -q -y install --download-only \
    glslc spirv-tools vulkan-validationlayers mesa-vulkan-drivers/trixie-backports >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
  echo "trixie.sh: downloaded $(du -cm "$tmp"/archives/*.deb | tail -1 | cut -f1) MB" >&2
  for deb in "$tmp"/archives/*.deb; do
    dpkg-deb -x "$deb" "$tmp/root"
  done
  # Keep lavapipe only: mesa-vulkan-drivers also holds the GPU drivers
  # (radv, anv, hasvk, nouveau, ...), about 100 MB that nothing here loads.
  find "$tmp/root/usr/lib" -name 'libvulkan_*.so' ! -name libvulkan_lvp.so -delete
  find "$tmp/root/usr/share/vulkan/icd.d" -name '*.json' ! -name 'lvp_icd*.json' -delete
  rm -rf "$tmp/root/usr/share/doc" "$tmp/root/usr/share/man" "$tmp/root/usr/share/locale" "$tmp/root/usr/share/lintian"
  local icd=$tmp/root/usr/share/vulkan/icd.d/lvp_icd.json
  if [[ ! -f $icd ]]; then
    echo "trixie.sh: the fetched mesa-vulkan-drivers has no lavapipe ICD file" >&2
    exit 1
  fi
  # Point the ICD at the unpacked driver (the file names it without a path).
  sed "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so\"#" \
    "$icd" >"$tmp/root/lvp_icd.json"
  rm -rf "$root"
  mv "$tmp/root" "$root"
}

if [[ ! -x $root/usr/bin/glslc || ! -f $root/lvp_icd.json || ! -f $root/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json ]]; then
  if [[ $offline == 1 ]]; then
    echo "trixie.sh: no trixie tools under $cache yet (run scripts/trixie.sh dir once)" >&2
    exit 3
  fi
  mkdir -p "$cache"
  fetch
fi

loader=("$lib/ld-linux-x86-64.so.2" --library-path "$lib:/usr/lib/x86_64-linux-gnu")
cmd=$1
shift
case "$cmd" in
  glslc | spirv-val) exec "${loader[@]}" "$root/usr/bin/$cmd" "$@" ;;
  run)
    [[ $# -ge 1 ]] || { echo "trixie.sh run: no program" >&2; exit 2; }
    export VK_ICD_FILENAMES=$root/lvp_icd.json
    export VK_LAYER_PATH=$root/usr/share/vulkan/explicit_layer.d
    exec "${loader[@]}" "$@"
    ;;
  dir) echo "$root" ;;
  *)
    echo "trixie.sh: unknown command $cmd (want glslc, spirv-val, run or dir)" >&2
    exit 2
    ;;
esac
