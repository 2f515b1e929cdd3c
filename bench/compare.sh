#!/usr/bin/env bash
# Times the ISAB forward pass with isab-vk (isab bench) and with PyTorch
# (bench/torch_ref.py) on this machine, in one run, and prints the ratio
# table: PyTorch ms / isab-vk ms per shape, so > 1 means isab-vk is faster.
#
#   bench/compare.sh [--shape b,n,dim,heads,m]... [--sweep-n FROM..TO]
#                    [--precision fp32|fp16|auto] [--iters N] [--threads T]
#                    [--torch-device auto|cpu|cuda] [--variants einsum,sdpa]
#                    [--no-deps]
#
# --shape, --sweep-n, --precision and --iters go to both sides. PyTorch runs
# in the precision that isab bench reports (fp16 -> float16, else float32),
# on CUDA when it sees a CUDA device (--torch-device auto), else on the CPU
# with T threads (default: all cores). The sdpa variant needs PyTorch >= 2.0
# and is skipped, saying so, on older ones. When the sweep covers n = 4096
# and n = 65536 it also prints time(65536)/time(4096) of each side (16 when
# linear in n).
#
# The PyTorch side uses Debian's python3-torch through /usr/bin/python3 (or
# $PYTHON); scripts/deps.sh --bench installs it and OpenBLAS when missing
# (skip with --no-deps). A CPU run whose PyTorch is on the reference BLAS
# gets a warning: its times would say little.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/usr/bin/python3}
shapes=() sweep=() precision=fp32 iters=5 threads=$(nproc) torch_device=auto variants=einsum,sdpa deps=1
usage() { echo "usage:" >&2; sed -n '6,9p' "$0" | sed 's/^#//' >&2; exit 2; }
need() { [[ $# -ge 2 && -n $2 ]] || { echo "compare.sh: $1 needs a value" >&2; usage; }; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --shape) need "$@"; shapes+=(--shape "$2"); shift 2 ;;
    --sweep-n) need "$@"; sweep=(--sweep-n "$2"); shift 2 ;;
    --precision) need "$@"; precision=$2; shift 2 ;;
    --iters) need "$@"; iters=$2; shift 2 ;;
    --threads) need "$@"; threads=$2; shift 2 ;;
    --torch-device) need "$@"; torch_device=$2; shift 2 ;;
    --variants) need "$@"; variants=$2; shift 2 ;;
    --no-deps) deps=0; shift ;;
    -h|--help) usage ;;
    *) echo "compare.sh: unknown argument $1" >&2; usage ;;
  esac
done
case "$precision" in fp32|fp16|auto) ;; *) echo "compare.sh: --precision must be fp32, fp16 or auto, not $precision" >&2; exit 2 ;; esac
case "$torch_device" in auto|cpu|cuda*) ;; *) echo "compare.sh: --torch-device must be auto, cpu or cuda, not $torch_device" >&2; exit 2 ;; esac
[[ $iters =~ ^[1-9][0-9]*$ && $threads =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --iters and --threads must be positive integers" >&2; exit 2; }
[[ ${#shapes[@]} -gt 0 ]] || shapes=(--shape 1,16384,512,8,128)

[[ $deps == 0 ]] || bash scripts/deps.sh --bench
make -s build >&2
out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "compare: isab bench --precision $precision ${shapes[*]} ${sweep[*]}" >&2
./bin/isab bench "${shapes[@]}" "${sweep[@]}" --precision "$precision" --iters "$iters" --json |
  sed 's/^{/{"impl":"isab-vk",/' >>"$out"

if [[ $torch_device == auto ]]; then
  torch_device=$("$PYTHON" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
fi
# PyTorch's precision follows what isab bench ran: float16 where isab ran
# fp16 and PyTorch can multiply float16 on its device, else float32.
dtype=$("$PYTHON" - "$out" "$torch_device" <<'PY'
import json, sys
import torch
precs = {json.loads(l)["precision"] for l in open(sys.argv[1]) if l.strip()}
dtype = "float32"
if precs == {"fp16"}:
    try:
        t = torch.ones(2, 2, device=sys.argv[2], dtype=torch.float16)
        torch.mm(t, t)
        dtype = "float16"
    except RuntimeError:
        print(f"compare: PyTorch {torch.__version__} cannot multiply float16 on {sys.argv[2]}; "
              "it runs in float32", file=sys.stderr)
print(dtype)
PY
)
has_sdpa=$("$PYTHON" -c 'import torch.nn.functional as F; print(int(hasattr(F, "scaled_dot_product_attention")))')
IFS=, read -r -a vlist <<<"$variants"
for v in "${vlist[@]}"; do
  case "$v" in
    einsum) ;;
    sdpa) if [[ $has_sdpa != 1 ]]; then
            echo "compare: skipping the sdpa variant: PyTorch $("$PYTHON" -c 'import torch; print(torch.__version__)') has no scaled_dot_product_attention (needs 2.0)" >&2
            continue
          fi ;;
    *) echo "compare.sh: unknown variant $v (want einsum or sdpa)" >&2; exit 2 ;;
  esac
  echo "compare: torch_ref.py --variant $v --device $torch_device --dtype $dtype" >&2
  OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads "$PYTHON" bench/torch_ref.py "${shapes[@]}" "${sweep[@]}" \
    --variant "$v" --device "$torch_device" --dtype "$dtype" --iters "$iters" --threads "$threads" >>"$out"
done

"$PYTHON" - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in rows:
    if r["impl"] != "isab-vk" and r.get("device", "").startswith("cpu") and r.get("blas") not in ("openblas", "mkl"):
        print(f"compare: WARNING: PyTorch runs its CPU matmuls on the {r.get('blas')} BLAS, not OpenBLAS "
              "(or MKL); its times are not representative. Install libopenblas0-pthread "
              "(scripts/deps.sh --bench) and check `update-alternatives --display "
              "libblas.so.3-x86_64-linux-gnu`.", file=sys.stderr)
        break
devices = {}
for r in rows:
    devices.setdefault(r["impl"], (r["device"], r["precision"], r.get("peak_gflops")))
for impl, (dev, prec, peak) in devices.items():
    peak = f", matmul peak {peak:.1f} GFLOP/s" if peak else ""
    print(f"{impl}: {dev}, {prec}{peak}")
key = lambda r: (r["b"], r["n"], r["dim"], r["heads"], r["m"])
mib = lambda r: "-" if r.get("device_mem_bytes") is None else f"{r['device_mem_bytes'] / 2**20:.1f}"
print(f"{'b,n,dim,heads,m':<24} {'impl':<14} {'median ms':>10} {'range ms':>20} {'GFLOP/s':>8} {'mem MiB':>8} {'torch/isab-vk':>13}")
for k in sorted({key(r) for r in rows}):
    grp = [r for r in rows if key(r) == k]
    ours = next((r for r in grp if r["impl"] == "isab-vk"), None)
    for r in grp:
        ratio = ""
        if ours and r is not ours:
            ratio = f"{r['ms_median'] / ours['ms_median']:.2f}"
        rng = f"{r['ms_min']:.1f}..{r['ms_max']:.1f}"
        print(f"{','.join(map(str, k)):<24} {r['impl']:<14} {r['ms_median']:>10.1f} {rng:>20} {r['gflops']:>8.1f} {mib(r):>8} {ratio:>13}")
lo, hi = 4096, 65536
fam = lambda r: (r["impl"], r["b"], r["dim"], r["heads"], r["m"])
times = {}
for r in rows:
    times.setdefault(fam(r), {})[r["n"]] = r["ms_median"]
for f, t in times.items():
    if lo in t and hi in t:
        print(f"scaling {f[0]:<14} b={f[1]} dim={f[2]} heads={f[3]} m={f[4]}: "
              f"time(n={hi})/time(n={lo}) = {t[hi] / t[lo]:.2f} ({hi // lo} if linear in n)")
PY
