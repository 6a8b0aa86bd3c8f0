#!/usr/bin/env bash
# One real training epoch on Fashion-MNIST (then the test-set evaluation), minicnn's demo and the
# tutorial's PyTorch loop (tools/pytorch_fashion_cnn.py) alternately, ROUNDS times each, same
# thread count: whole processes, data loading included. Prints each run's epoch line and wall
# time, then the medians. Machine noise hits both sides alike when they alternate.
#
#   benchmarks/compare_epochs.sh [ROUNDS] [-- extra fashion_mnist flags]
#   benchmarks/compare_epochs.sh 3                               # tutorial recipe on both sides
#   benchmarks/compare_epochs.sh 3 -- --recipe best --epochs 1   # minicnn's best recipe vs the tutorial's loop
#
# Needs build/examples/fashion_mnist, the data set and Debian's python3-torch + torchvision.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
shift || true
[ "${1:-}" = "--" ] && shift
ours=(build/examples/fashion_mnist train --epochs 1 --threads 2 --out "${TMPDIR:-/tmp}/compare_epochs" "$@")
theirs=(/usr/bin/python3 tools/pytorch_fashion_cnn.py --epochs 1 --threads 2)

wall() {  # runs a command, prints its epoch line, returns its wall time in seconds on stdout's last line
  local start end
  start=$(date +%s.%N)
  "$@" 2>&1 | grep -E '^epoch' | sed 's/^/    /' >&2
  end=$(date +%s.%N)
  awk -v a="$end" -v b="$start" 'BEGIN { printf "%.1f\n", a - b }'
}

ours_times=() theirs_times=()
for ((r = 1; r <= rounds; ++r)); do
  echo "round $r/$rounds" >&2
  echo "  minicnn: ${ours[*]}" >&2
  ours_times+=("$(wall "${ours[@]}")")
  echo "  PyTorch: ${theirs[*]}" >&2
  theirs_times+=("$(wall "${theirs[@]}")")
  echo "  wall: minicnn ${ours_times[-1]} s, PyTorch ${theirs_times[-1]} s" >&2
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
m_ours=$(median "${ours_times[@]}")
m_theirs=$(median "${theirs_times[@]}")
echo "median wall of one process (load data, 1 epoch, evaluate): minicnn $m_ours s, PyTorch $m_theirs s," \
     "ratio PyTorch / minicnn $(awk -v a="$m_theirs" -v b="$m_ours" 'BEGIN { printf "%.2f", a / b }')"
