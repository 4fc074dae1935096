#!/usr/bin/env bash
# Runs the simulated-network scenarios (tests/tests/simulation.rs) over many seeds.
#
#   scripts/simulate.sh [seeds] [scenario]   # seeds: a count (1000) or a range (5000..6000)
#   scripts/simulate.sh --replay <seed> [scenario]
#   scripts/simulate.sh --backoff            # the reconnect back-off table of BENCHMARKS.md
#
# Scenarios (test-name filters): broker, push, subscribers, reconnects; all by default.
# Every scenario runs on turmoil's simulated network in virtual time. A seed decides the
# network's latencies, the chaos schedule and every random number the sockets draw, so a
# failing seed replays exactly: the failure message prints `SP_SIM_SEED=<n>`, and
# `--replay <n>` runs that one seed again with the same output. Release build: about a
# second of real time per scenario and seed.
set -euo pipefail
cd "$(dirname "$0")/.."

run() {
  cargo test --release -p sp-tests --test simulation "$@" -- --nocapture --test-threads 2
}

case "${1:-}" in
  --replay)
    seed=${2:?"--replay needs a seed"}
    SP_SIM_SEED=$seed run ${3:+"$3"}
    ;;
  --backoff)
    cargo test --release -p sp-tests --test simulation backoff_table -- --ignored --nocapture
    ;;
  *)
    seeds=${1:-1000}
    if [[ "$seeds" != *..* ]]; then
      seeds="0..$seeds"
    fi
    SP_SIM_SEEDS=$seeds run ${2:+"$2"}
    ;;
esac
