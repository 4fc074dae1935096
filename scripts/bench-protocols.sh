#!/usr/bin/env bash
# Runs the BENCHMARKS.md rows for the secure and WebSocket transports (against plain TCP in the
# same run), PUB/SUB fan-out and REQ/REP with contexts (against raw-TCP baselines).
#
#   scripts/bench-protocols.sh [repeats]
#
# Every figure is the median of `repeats` runs. Prints a Markdown table. Needs openssl for a
# throwaway certificate.
set -uo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
cargo build -q --release -p sp-tools
sp=target/release/sp-perf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
port=$((20000 + RANDOM % 20000))
. scripts/bench-lib.sh

make_test_certs

MB="throughput: [0-9.]+ \[Mb/s\]"
L="average latency"
{
  echo "## Throughput by transport (Mb/s of payload, higher is better)"
  for size in 64 1400 65536; do
    case $size in 64) n=1000000 ;; 1400) n=300000 ;; *) n=20000 ;; esac
    for url in tcp://127.0.0.1:PORT tls+tcp://127.0.0.1:PORT ws://127.0.0.1:PORT/b wss://127.0.0.1:PORT/b; do
      measure "${url%%://*} $size B" "$MB" \
        $sp "${srv[@]}" local_thr $url $size $n -- $sp "${cli[@]}" remote_thr $url $size $n
    done
  done
  echo "## 64 B one-way latency by transport (us, lower is better)"
  for url in tcp://127.0.0.1:PORT tls+tcp://127.0.0.1:PORT ws://127.0.0.1:PORT/b wss://127.0.0.1:PORT/b; do
    measure "${url%%://*} 64 B" "$L" \
      $sp "${srv[@]}" local_lat $url 64 20000 -- $sp "${cli[@]}" remote_lat $url 64 20000
  done
  echo "## PUB/SUB fan-out: 1 PUB, 4 SUBs, 64 B, 200000 sent (msg/s delivered in total)"
  measure "fanout_thr tcp"        "delivered in total" $sp fanout_thr tcp://127.0.0.1:PORT 4 64 200000
  measure "fanout_thr inproc"     "delivered in total" $sp fanout_thr inproc://fanPORT 4 64 200000
  measure "raw_fanout_thr tcp"    "delivered in total" $sp raw_fanout_thr tcp://127.0.0.1:PORT 4 64 200000
  echo "## PUB/SUB fan-out: messages delivered of 800000"
  measure "fanout_thr tcp"        "messages delivered" $sp fanout_thr tcp://127.0.0.1:PORT 4 64 200000
  measure "fanout_thr inproc"     "messages delivered" $sp fanout_thr inproc://fanPORT 4 64 200000
  echo "## PUB/SUB fan-out, publisher paced at R msg/s for 1 s: messages delivered of 4 R"
  for rate in 250000 500000 1000000; do
    measure "fanout_thr tcp, R = $rate" "messages delivered" $sp fanout_thr --rate $rate tcp://127.0.0.1:PORT 4 64 $rate
  done
  echo "## REQ/REP with contexts, 64 B, 100000 round trips (round trips/s)"
  for depth in 1 16 100; do
    measure "req_ctx_thr tcp, $depth in flight"       "round trips/s" $sp req_ctx_thr tcp://127.0.0.1:PORT $depth 64 100000
    measure "raw_pipelined_thr tcp, $depth in flight" "round trips/s" $sp raw_pipelined_thr tcp://127.0.0.1:PORT $depth 64 100000
  done
  measure "req_ctx_thr inproc, 100 in flight" "round trips/s" $sp req_ctx_thr inproc://ctxPORT 100 64 100000
} | awk -F'|' 'BEGIN {print "| case | median | runs |"; print "|---|---|---|"}
               /^##/ {print "| **" substr($0, 4) "** | | |"; next}
               {print "| " $1 " | " $2 " | " $3 " |"}'
