#!/usr/bin/env bash
# Threads and memory of one blocking socket with many pipes, for a base commit and this tree
# in the same run: `blocking_pipes serve` (a PULL listening on TCP) built from each, with the
# peers dialed by this tree's `blocking_pipes dial` (a PUSH dialing N times) in another
# process. Prints the process's threads (all of them, the main thread included), VmSize and
# VmRSS once every pipe attached, for each side.
# Usage: scripts/bench-pipes.sh <base-commit> [pipe counts...]   (default: 1 100 10000)
# 10,000 pipes need 10,000 file descriptors in each process: the script raises `ulimit -n`.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?base commit}
shift
[ $# -gt 0 ] && counts=("$@") || counts=(1 100 10000)
ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

wt=target/bench-ab/worktree
if [ -d "$wt" ]; then
  git -C "$wt" checkout -q --detach "$base"
else
  git worktree add --detach "$wt" "$base" >/dev/null
fi
# The example uses only the public API, so the base commit builds it too.
cp sp-blocking/examples/blocking_pipes.rs "$wt/sp-blocking/examples/"
CARGO_TARGET_DIR=target/bench-ab cargo build -q --release -p sp-blocking --example blocking_pipes \
  --manifest-path "$wt/Cargo.toml"
cp target/bench-ab/release/examples/blocking_pipes "$tmp/pipes-base"
rm "$wt/sp-blocking/examples/blocking_pipes.rs"
cargo build -q --release -p sp-blocking --example blocking_pipes
cp target/release/examples/blocking_pipes "$tmp/pipes-head"

port=$((20000 + RANDOM % 20000))
field() { sed -nE "s/.* $1=([0-9?]+).*/\1/p" | head -1; }
echo "| build | side | pipes | threads | VmSize (KiB) | VmRSS (KiB) |"
echo "|---|---|---|---|---|---|"
for n in "${counts[@]}"; do
  for which in base head; do
    port=$((port + 1))
    url=tcp://127.0.0.1:$port
    "$tmp/pipes-$which" serve "$url" "$n" >"$tmp/serve.out" 2>&1 &
    spid=$!
    for _ in $(seq 1 500); do
      awk -v p="$(printf ':%04X' "$port")" '$2 ~ p"$" && $4 == "0A" {f=1} END {exit !f}' \
        /proc/net/tcp && break
      sleep 0.01
    done
    "$tmp/pipes-head" dial "$url" "$n" >"$tmp/dial.out" 2>&1 || true
    wait $spid || true
    for side in serve dial; do
      line=$(grep "^$side " "$tmp/$side.out" || echo "$side failed: $(tail -1 "$tmp/$side.out")")
      build=$which; [ "$side" = dial ] && build=head
      [ "$side" = dial ] && [ "$which" = base ] && continue
      echo "| $build$([ "$build" = base ] && echo " ($base)") | $side | $n | $(echo "$line" | field threads) | $(echo "$line" | field vm_kib) | $(echo "$line" | field rss_kib) |"
    done
  done
done
