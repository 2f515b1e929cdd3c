#!/usr/bin/env bash
# Times the ISAB forward pass with isab-vk (isab bench) and with PyTorch
# (bench/torch_ref.py) on this machine, in one run, and prints the ratio.
#   bench/compare.sh [--shape b,n,dim,heads,m]... [--iters N] [--threads T]
# The PyTorch side uses Debian's python3-torch through /usr/bin/python3 (or
# $PYTHON); for the CPU comparison install libopenblas0-pthread so that it
# runs on OpenBLAS rather than the reference BLAS.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/usr/bin/python3}
shapes=() iters=5 threads=$(nproc)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --shape) shapes+=(--shape "$2"); shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ ${#shapes[@]} -gt 0 ]] || shapes=(--shape 1,16384,512,8,128)
make -s build >&2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
./bin/isab bench "${shapes[@]}" --iters "$iters" --json | sed 's/^{/{"impl":"isab-vk",/' >>"$out"
OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads "$PYTHON" bench/torch_ref.py "${shapes[@]}" --iters "$iters" --threads "$threads" >>"$out"
"$PYTHON" - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
key = lambda r: (r["b"], r["n"], r["dim"], r["heads"], r["m"])
print(f"{'b,n,dim,heads,m':<24} {'impl':<14} {'median ms':>10} {'range ms':>20} {'GFLOP/s':>8} {'torch/isab-vk':>13}")
for k in sorted({key(r) for r in rows}):
    grp = [r for r in rows if key(r) == k]
    ours = next((r for r in grp if r["impl"] == "isab-vk"), None)
    for r in grp:
        ratio = ""
        if ours and r is not ours:
            ratio = f"{r['ms_median'] / ours['ms_median']:.2f}"
        rng = f"{r['ms_min']:.1f}..{r['ms_max']:.1f}"
        print(f"{','.join(map(str, k)):<24} {r['impl']:<14} {r['ms_median']:>10.1f} {rng:>20} {r['gflops']:>8.1f} {ratio:>13}")
PY
