#!/usr/bin/env bash
# Runs sp-perf (tokio), a raw-TCP baseline with the same 8-byte length framing, and NNG 1.11's
# perf tools, with the mixed sp-rs <-> NNG rows, one after another in the same run on this
# machine (its table of 2026-11-26 is in docs/bench-history.md).
#
#   scripts/bench.sh [thr-count] [lat-roundtrips] [repeats]
#
# Every figure is the median of `repeats` runs. Prints a Markdown table.
set -uo pipefail
cd "$(dirname "$0")/.."
thr_count=${1:-1000000}
lat_trips=${2:-20000}
repeats=${3:-3}
cargo build -q --release -p sp-tools
scripts/build-nng-perf.sh >/dev/null
sp=target/release/sp-perf
nng=target/nng-perf/bin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
port=$((20000 + RANDOM % 20000))

. scripts/bench-lib.sh

T=tcp://127.0.0.1:PORT
I=ipc://$tmp/bench-PORT.sock
R="throughput: [0-9.]+ \[msg/s\]"
L="average latency"
{
  echo "## 64 B messages: throughput (msg/s, higher is better)"
  measure "tcp  sp-rs -> sp-rs"        "$R" $sp local_thr $T 64 $thr_count -- $sp remote_thr $T 64 $thr_count
  measure "tcp  raw baseline"          "$R" $sp raw_local_thr $T 64 $thr_count -- $sp raw_remote_thr $T 64 $thr_count
  measure "tcp  NNG -> NNG"            "$R" $nng/local_thr $T 64 $thr_count -- $nng/remote_thr $T 64 $thr_count
  measure "tcp  sp-rs -> NNG"          "$R" $nng/local_thr $T 64 $thr_count -- $sp remote_thr $T 64 $thr_count
  measure "tcp  NNG -> sp-rs"          "$R" $sp local_thr $T 64 $thr_count -- $nng/remote_thr $T 64 $thr_count
  measure "ipc  sp-rs -> sp-rs"        "$R" $sp local_thr $I 64 $thr_count -- $sp remote_thr $I 64 $thr_count
  measure "ipc  NNG -> NNG"            "$R" $nng/local_thr $I 64 $thr_count -- $nng/remote_thr $I 64 $thr_count
  measure "inproc sp-rs"               "$R" $sp inproc_thr 64 $thr_count
  measure "inproc NNG"                 "$R" $nng/inproc_thr 64 $thr_count
  echo "## 64 B messages: one-way latency (us, lower is better)"
  measure "tcp  sp-rs <-> sp-rs"       "$L" $sp local_lat $T 64 $lat_trips -- $sp remote_lat $T 64 $lat_trips
  measure "tcp  raw baseline"          "$L" $sp raw_local_lat $T 64 $lat_trips -- $sp raw_remote_lat $T 64 $lat_trips
  measure "tcp  NNG <-> NNG"           "$L" $nng/local_lat $T 64 $lat_trips -- $nng/remote_lat $T 64 $lat_trips
  measure "ipc  sp-rs <-> sp-rs"       "$L" $sp local_lat $I 64 $lat_trips -- $sp remote_lat $I 64 $lat_trips
  measure "ipc  NNG <-> NNG"           "$L" $nng/local_lat $I 64 $lat_trips -- $nng/remote_lat $I 64 $lat_trips
  measure "inproc sp-rs"               "$L" $sp inproc_lat 64 $lat_trips
  measure "inproc NNG"                 "$L" $nng/inproc_lat 64 $lat_trips
  echo "## Runtimes side by side, 64 B (tcp thr in msg/s, latencies in us)"
  # smol runs on one executor thread: with two, woken tasks hop between threads and its TCP
  # latency doubles (measured: 27.8 us with one thread against 48.8 us with two).
  for rtm in tokio "smol --threads 1" blocking; do
    measure "tcp thr  $rtm"            "$R" $sp --runtime $rtm local_thr $T 64 $thr_count -- $sp --runtime $rtm remote_thr $T 64 $thr_count
    measure "tcp lat  $rtm"            "$L" $sp --runtime $rtm local_lat $T 64 $lat_trips -- $sp --runtime $rtm remote_lat $T 64 $lat_trips
    measure "inproc thr $rtm"          "$R" $sp --runtime $rtm inproc_thr 64 $thr_count
    measure "inproc lat $rtm"          "$L" $sp --runtime $rtm inproc_lat 64 $lat_trips
  done
  measure "tcp thr  raw baseline"      "$R" $sp raw_local_thr $T 64 $thr_count -- $sp raw_remote_thr $T 64 $thr_count
  measure "tcp lat  raw baseline"      "$L" $sp raw_local_lat $T 64 $lat_trips -- $sp raw_remote_lat $T 64 $lat_trips
  echo "## Peak RSS (KiB) during the tcp 64 B throughput run, receiver / sender"
  M="rss:"
  TS="/usr/bin/time -f rss:%M"
  measure "sp-rs receiver (local_thr)" "$M" $TS $sp local_thr $T 64 $thr_count -- $sp remote_thr $T 64 $thr_count
  measure "sp-rs sender (remote_thr)"  "$M" $sp local_thr $T 64 $thr_count -- $TS $sp remote_thr $T 64 $thr_count
  measure "NNG receiver (local_thr)"   "$M" $TS $nng/local_thr $T 64 $thr_count -- $nng/remote_thr $T 64 $thr_count
  measure "NNG sender (remote_thr)"    "$M" $nng/local_thr $T 64 $thr_count -- $TS $nng/remote_thr $T 64 $thr_count
} | awk -F'|' 'BEGIN {print "| case | median | runs |"; print "|---|---|---|"}
               /^##/ {print "| **" substr($0, 4) "** | | |"; next}
               {print "| " $1 " | " $2 " | " $3 " |"}'
