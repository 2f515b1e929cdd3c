#!/usr/bin/env bash
# The GPU checks of the performance issue, as one script for the device
# machine (see ../.library/device/README.md), which has no Go: build the
# bundle here first with `make gpu-bundle` (test binaries and bin/isab in
# .gpu/, ignored by git), fetch the Vulkan loader packages into .gl/ once
# (the device README says how), then run there with carry [".gpu", ".gl"]:
#
#   bash scripts/gpu-check.sh            # writes logs and JSON under $OUT
#
# It lists every device (SwiftShader is not there; lavapipe is where Mesa is
# installed), runs the vk, ops, isab and cmd/isab tests on the GPU (the
# golden files come from .gpu/golden, which make gpu-bundle copies from
# ../shared, so every golden case also runs through isab run there), then
# isab bench and bench/torch_ref.py (CUDA, TF32 off) on the shapes of the
# portability issue: the README shape in fp32 and fp16 (fp16 on cooperative
# matrices where the GPU lists an fp16 shape, and once more without them),
# b32 n4096 in fp16 and fp32, n = 1,048,576 in fp32 and fp16, and a sweep
# in n. The ops tests TestLinearCoop and TestAttentionCoop check the
# cooperative-matrix kernels there.
# To try it here on lavapipe, with small shapes and few iterations:
#   QUICK=1 OUT=/tmp/gpu bash scripts/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
if compgen -G ".gl/*.deb" >/dev/null; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
# The tests run under the validation layer where it is installed (here);
# the device machine lacks it, so there they run without.
if ! compgen -G "/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json" >/dev/null; then
  export ISAB_VALIDATION=0
fi
[[ -x .gpu/isab ]] || { echo "gpu-check: no .gpu/isab; run make gpu-bundle first" >&2; exit 2; }
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }

if [[ -d .gpu/golden ]]; then
  export ISAB_GOLDEN=$PWD/.gpu/golden
fi

log "devices"
.gpu/isab devices 2>&1 | tee "$OUT/devices.txt"
.gpu/isab devices --json >"$OUT/devices.jsonl" 2>&1
for pkg in vk ops isab cmd/isab; do
  name=${pkg//\//_}
  [[ -x .gpu/$name.test ]] || { log "tests: $pkg: no .gpu/$name.test"; continue; }
  log "tests: $pkg"
  (cd "$pkg" && timeout 300 "$OLDPWD/.gpu/$name.test" -test.count=1 -test.timeout 290s >"$OUT/test_$name.txt" 2>&1)
  echo "exit $?" | tee -a "$OUT/summary.txt"
  grep -E "^(--- FAIL|FAIL|ok|PASS)" "$OUT/test_$name.txt" | tail -5 >>"$OUT/summary.txt"
done

bench() { # name, then isab bench arguments
  local name=$1; shift
  log "isab bench $name: $*"
  timeout 240 .gpu/isab bench -o jsonl "$@" >"$OUT/bench_$name.jsonl" 2>>"$OUT/bench_errors.txt"
  cat "$OUT/bench_$name.jsonl" >>"$OUT/summary.txt"
}
readme=1,16384,512,8,128 b32=32,4096,512,8,128 sweep=4096..1048576 iters=20 big=1,1048576,512,8,128
if [[ -n ${QUICK:-} ]]; then
  readme=1,1024,512,8,128 b32=2,512,512,8,128 sweep=256..1024 iters=2 big=1,2048,512,8,128
fi
bench readme_fp32 --shape $readme --iters $iters --stages
bench readme_fp16 --shape $readme --iters $iters --precision fp16 --stages
# The same without cooperative matrices (matmul_f16 and attention_f16).
ISAB_COOPMAT=off bench readme_fp16_nocoop --shape $readme --iters $iters --precision fp16
bench b32_fp16 --shape $b32 --iters $iters --precision fp16
bench b32_fp32 --shape $b32 --iters $iters
bench big_fp32 --shape $big --iters $((iters / 4 + 1))
bench big_fp16 --shape $big --iters $((iters / 4 + 1)) --precision fp16
bench sweep_fp32 --shape 1,4096,512,8,128 --sweep-n $sweep --iters $((iters / 4 + 1))

if command -v python3 >/dev/null && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  for args in "--dtype float32" "--dtype bfloat16" "--dtype bfloat16 --variant sdpa"; do
    log "torch_ref $args"
    timeout 240 python3 bench/torch_ref.py --device cuda $args --iters $iters \
      --shape $readme --shape $b32 --shape $big >>"$OUT/torch.jsonl" 2>>"$OUT/torch_errors.txt"
  done
  cat "$OUT/torch.jsonl" >>"$OUT/summary.txt"
else
  log "no PyTorch with CUDA here: torch_ref skipped"
fi
log "done"
