#!/usr/bin/env bash
# Compares the tcp throughput row (sp-perf local_thr/remote_thr, tokio; 64 B messages unless
# a size is given) of two commits, interleaving their runs (A B A B ...) so that machine noise
# hits both alike.
# Usage: scripts/bench-ab.sh <base-commit> [messages] [rounds] [size]
# Builds the base commit's sp-perf in a worktree under target/bench-ab, and this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?base commit}
count=${2:-1000000}
rounds=${3:-5}
size=${4:-64}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
repeats=1
port=$((20000 + RANDOM % 20000))
source scripts/bench-lib.sh

wt=target/bench-ab/worktree
if [ -d "$wt" ]; then
  git -C "$wt" checkout -q --detach "$base"
else
  git worktree add --detach "$wt" "$base" >/dev/null
fi
CARGO_TARGET_DIR=target/bench-ab cargo build -q --release -p sp-tools --bin sp-perf \
  --manifest-path "$wt/Cargo.toml"
cp target/bench-ab/release/sp-perf "$tmp/sp-perf-base"
cargo build -q --release -p sp-tools --bin sp-perf
cp target/release/sp-perf "$tmp/sp-perf-head"

T="tcp://127.0.0.1:PORT"
a=() b=()
for i in $(seq 1 "$rounds"); do
  for which in base head; do
    sp=$tmp/sp-perf-$which
    line=$(measure "$which" 'throughput: [0-9.]+ \[msg/s\]' $sp local_thr $T "$size" "$count" -- $sp remote_thr $T "$size" "$count")
    v=$(echo "$line" | cut -d'|' -f2)
    if [ "$which" = base ]; then a+=("$v"); else b+=("$v"); fi
  done
done
ma=$(printf '%s\n' "${a[@]}" | median)
mb=$(printf '%s\n' "${b[@]}" | median)
echo "tcp $size B throughput (msg/s), $rounds interleaved rounds of $count messages"
echo "| build | median | runs |"
echo "|---|---|---|"
echo "| $base (before) | $ma | ${a[*]} |"
echo "| $(git rev-parse --short HEAD) (after) | $mb | ${b[*]} |"
awk -v a="$ma" -v b="$mb" 'BEGIN { printf "after / before: %.3f\n", b / a }'
