#!/usr/bin/env bash
# The runtime rows of BENCHMARKS.md for sp-blocking, before (a base commit) and after (this
# tree), interleaved round by round (base, head, references, ...) so that machine noise hits
# every build alike; smol (one thread), tokio and the raw ping-pong run in the same rounds as
# references. Rows: 64 B tcp throughput and latency, ipc throughput, tcp throughput of 1400 B
# and 64 KiB messages (a 50th of the count), inproc throughput and latency, and the
# one-way latency over tls+tcp and ws (a throwaway certificate; needs openssl). Prints medians
# and every run.
# Usage: scripts/bench-blocking-ab.sh <base-commit> [rounds] [thr-count] [lat-round-trips]
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?base commit}
rounds=${2:-5}
thr_count=${3:-300000}
lat_trips=${4:-5000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
repeats=1
port=$((20000 + RANDOM % 20000))
source scripts/bench-lib.sh
make_test_certs

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
I="ipc://$tmp/bench-PORT.ipc"
R="throughput: [0-9.]+ \[msg/s\]"
L="average latency"
declare -A runs
row() { # key regex cmd...
  local key=$1; shift
  local v; v=$(measure "$key" "$@" | cut -d'|' -f2)
  runs[$key]="${runs[$key]:-} $v"
}
keys=()
for i in $(seq 1 "$rounds"); do
  for which in base head ref-smol ref-tokio; do
    case $which in
      base|head) sp=$tmp/sp-perf-$which; rt=blocking ;;
      ref-smol) sp=$tmp/sp-perf-head; rt="smol --threads 1" ;;
      ref-tokio) sp=$tmp/sp-perf-head; rt=tokio ;;
    esac
    row "tcp thr $which" "$R" $sp --runtime $rt local_thr $T 64 "$thr_count" -- $sp --runtime $rt remote_thr $T 64 "$thr_count"
    row "tcp lat $which" "$L" $sp --runtime $rt local_lat $T 64 "$lat_trips" -- $sp --runtime $rt remote_lat $T 64 "$lat_trips"
    row "ipc thr $which" "$R" $sp --runtime $rt local_thr "$I" 64 "$thr_count" -- $sp --runtime $rt remote_thr "$I" 64 "$thr_count"
    row "tcp 1400 B thr $which" "$R" $sp --runtime $rt local_thr $T 1400 "$thr_count" -- $sp --runtime $rt remote_thr $T 1400 "$thr_count"
    row "tcp 64 KiB thr $which" "$R" $sp --runtime $rt local_thr $T 65536 $((thr_count / 50)) -- $sp --runtime $rt remote_thr $T 65536 $((thr_count / 50))
    row "inproc thr $which" "$R" $sp --runtime $rt inproc_thr 64 "$thr_count"
    row "inproc lat $which" "$L" $sp --runtime $rt inproc_lat 64 "$lat_trips"
    row "tls lat $which" "$L" $sp --runtime $rt "${srv[@]}" local_lat "tls+$T" 64 "$lat_trips" -- $sp --runtime $rt "${cli[@]}" remote_lat "tls+$T" 64 "$lat_trips"
    row "ws lat $which" "$L" $sp --runtime $rt local_lat "ws://127.0.0.1:PORT/b" 64 "$lat_trips" -- $sp --runtime $rt remote_lat "ws://127.0.0.1:PORT/b" 64 "$lat_trips"
  done
  sp=$tmp/sp-perf-head
  row "tcp lat raw" "$L" $sp raw_local_lat $T 64 "$lat_trips" -- $sp raw_remote_lat $T 64 "$lat_trips"
done
echo "64 B messages unless the row says otherwise; $rounds interleaved rounds; thr: $thr_count messages (msg/s), lat: $lat_trips round trips (one-way us)"
echo "| row | median | runs |"
echo "|---|---|---|"
for kind in "tcp thr" "ipc thr" "tcp 1400 B thr" "tcp 64 KiB thr" "tcp lat" "inproc thr" "inproc lat" "tls lat" "ws lat"; do
  for which in base head ref-smol ref-tokio raw; do
    key="$kind $which"
    [ -n "${runs[$key]:-}" ] || continue
    label=$key
    case $which in
      base) label="$kind blocking, before ($base)" ;;
      head) label="$kind blocking, after ($(git rev-parse --short HEAD))" ;;
      ref-smol) label="$kind smol --threads 1 (reference)" ;;
      ref-tokio) label="$kind tokio (reference)" ;;
      raw) label="$kind raw ping-pong (reference)" ;;
    esac
    m=$(printf '%s\n' ${runs[$key]} | median)
    echo "| $label | $m | ${runs[$key]# } |"
  done
done
