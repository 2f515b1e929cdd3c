#!/usr/bin/env bash
# Installs the system packages isab-vk needs on Debian/Ubuntu, only those
# that are missing, so it is quick when everything is present.
#   scripts/deps.sh            # runtime and test packages
#   scripts/deps.sh --gen      # also Debian's python3-torch, for testdata/gen.py
#   scripts/deps.sh --view     # also the X11 headers that GLFW (isab view) builds
#                              # against, and xvfb for the window tests
#   scripts/deps.sh --swiftshader  # also curl and brotli, which
#                              # scripts/swiftshader.sh fetches SwiftShader with
#   scripts/deps.sh --bench    # also Debian's python3-torch and OpenBLAS, for
#                              # bench/compare.sh (PyTorch on OpenBLAS, not the
#                              # reference BLAS)
set -euo pipefail

pkgs=(glslc libvulkan1 mesa-vulkan-drivers vulkan-validationlayers spirv-tools)
for arg in "$@"; do
  case "$arg" in
    --gen) pkgs+=(python3-torch python3-numpy) ;;
    --swiftshader) pkgs+=(curl ca-certificates brotli) ;;
    --bench) pkgs+=(python3-torch libopenblas0-pthread) ;;
    --view) pkgs+=(libx11-dev libxrandr-dev libxinerama-dev libxcursor-dev libxi-dev
                   libxxf86vm-dev libgl1-mesa-dev xvfb xauth) ;;
    *) echo "deps: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: missing ${missing[*]}, and there is no apt-get here; install them by hand" >&2
  exit 1
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "deps: missing ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Another apt-get (a second make, a parallel job) may hold the lock: wait for it.
lock=(-o DPkg::Lock::Timeout=600)
$sudo apt-get "${lock[@]}" update -q >/dev/null
$sudo apt-get "${lock[@]}" install -y -q --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done" >&2
