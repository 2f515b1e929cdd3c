#!/usr/bin/env bash
# coldstart.sh times isab as whole processes, cold and warm: cold runs get a
# fresh, empty HOME and XDG_CACHE_HOME and MESA_SHADER_CACHE_DISABLE=true (no
# shader cache of any kind, what a CI runner meets); warm runs share one
# cache folder that a first, untimed run fills. It prints the median and
# range of each.
#   bench/coldstart.sh [--runs N] [--isab PATH] [-- ISAB ARGS...]
# Default arguments: bench --shape 1,1024,512,8,128 --iters 1 --peak-n 0.
set -euo pipefail
runs=3
isab="$(dirname "$0")/../bin/isab"
args=(bench --shape 1,1024,512,8,128 --iters 1 --peak-n 0)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --isab) isab="$2"; shift 2 ;;
    --) shift; args=("$@"); break ;;
    *) echo "coldstart.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -x "$isab" ]] || { echo "coldstart.sh: no $isab (run make build)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# elapsed runs the command with env and prints its wall time in seconds.
elapsed() {
  local start end
  start=$(date +%s.%N)
  env "$@" "$isab" "${args[@]}" >/dev/null
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", e - s }'
}

# summary prints the median and range of its arguments.
summary() {
  printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f s (%.2f .. %.2f, %d runs)\n", m, a[1], a[NR], NR}'
}

cold=()
for ((i = 0; i < runs; i++)); do
  home="$tmp/cold$i"
  mkdir -p "$home"
  cold+=("$(elapsed MESA_SHADER_CACHE_DISABLE=true HOME="$home" XDG_CACHE_HOME="$home")")
done
warmhome="$tmp/warm"
mkdir -p "$warmhome"
elapsed HOME="$warmhome" XDG_CACHE_HOME="$warmhome" >/dev/null # fills the cache
warm=()
for ((i = 0; i < runs; i++)); do
  warm+=("$(elapsed HOME="$warmhome" XDG_CACHE_HOME="$warmhome")")
done
echo "isab ${args[*]}"
echo "cold (no shader cache): $(summary "${cold[@]}")"
echo "warm (shader cache filled): $(summary "${warm[@]}")"
