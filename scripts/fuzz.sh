#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/, one after another (one fuzzing process at a time).
#
#   scripts/fuzz.sh [seconds-per-target] [target...]
#   scripts/fuzz.sh --runs N [target...]
#
# Every target (or the ones named) runs for the given time (default 60 s), or with --runs for
# exactly N inputs (libFuzzer's -runs=N; no time limit), with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none -a <t> <work corpus> fuzz/corpus/<t> -- \
#     -max_total_time=N | -runs=N  -print_final_stats=1 -timeout=20 [-max_len=...]
# (-max_len for the two slowest targets, see target_args below)
# and the script prints how many inputs each one executed (libFuzzer's final
# `stat::number_of_executed_units`), in how many seconds, and for a crash the artifact and
# the command that reproduces it. The table is also appended to
# fuzz/target/fuzz-logs/summary.txt, with the date and the commit. New inputs go to a work
# corpus under fuzz/target/ (not committed); the committed seeds in fuzz/corpus/<t>/ are only
# read. FUZZING.md says how to merge and minimise.
#
# `-a` keeps debug assertions and overflow checks on. The sanitizer is off by default: every
# crate under test forbids unsafe code, so AddressSanitizer finds nothing a panic does not,
# and it costs 2-4x the executions. FUZZ_SANITIZER=address turns it back on.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). RUSTC_BOOTSTRAP=1 lets a stable toolchain take
# the unstable flags cargo-fuzz passes. Extra libFuzzer flags: FUZZ_ARGS="-max_len=8192 ...".
set -uo pipefail
cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
  exit 2
fi

seconds=60
runs=
if [ $# -gt 1 ] && [ "$1" = --runs ] && [[ "$2" =~ ^[0-9]+$ ]]; then
  runs=$2
  shift 2
elif [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
elif [ $# -gt 0 ] && [[ "$1" == -* ]]; then
  echo "usage: scripts/fuzz.sh [seconds-per-target | --runs N] [target...]" >&2
  exit 2
fi
if [ -n "$runs" ]; then
  limit=(-runs="$runs")
  budget="$runs runs"
else
  limit=(-max_total_time="$seconds")
  budget="${seconds}s"
fi
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi

# Per-target libFuzzer flags, before FUZZ_ARGS (a later flag wins). libFuzzer lets inputs grow
# towards 4096 bytes as coverage levels off; these two targets pay for every byte (up to ~800
# core operations run twice, hundreds of arguments through clap): without a limit
# protocol_scenario averaged 1,440 inputs/s over half an hour, against 18,000 in its first
# 20 s. 1024 bytes still hold 200-400 core operations (enough to fill a 128-message queue),
# 512 bytes a long command line.
target_args() {
  case "$1" in
    protocol_scenario) echo -max_len=1024 ;;
    spcat_args) echo -max_len=512 ;;
  esac
}

export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-none}
logs=fuzz/target/fuzz-logs
mkdir -p "$logs"
summary=()
status=0

for t in "${targets[@]}"; do
  work=fuzz/target/corpus-work/$t
  mkdir -p "$work" "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log=$logs/$t.log
  echo "=== $t: $budget (log: $log)"
  before=$(ls -1 "fuzz/artifacts/$t" 2>/dev/null | sort)
  # shellcheck disable=SC2046,SC2086 # target_args and FUZZ_ARGS are lists of flags
  cargo fuzz run -s "$sanitizer" -a "$t" "$work" "fuzz/corpus/$t" -- \
    "${limit[@]}" -print_final_stats=1 -timeout=20 $(target_args "$t") ${FUZZ_ARGS:-} \
    >"$log" 2>&1
  rc=$?
  execs=$(grep -a 'stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')
  execs=${execs:-?}
  after=$(ls -1 "fuzz/artifacts/$t" 2>/dev/null | sort)
  new=$(comm -13 <(echo "$before") <(echo "$after") | grep -v '^$' | tail -1)
  if [ $rc -eq 0 ]; then
    result=ok
  else
    status=1
    result="FAILED (exit $rc)"
    tail -40 "$log" >&2
    if [ -n "$new" ]; then
      result="CRASH: fuzz/artifacts/$t/$new"
      echo "reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run -s $sanitizer -a $t fuzz/artifacts/$t/$new" >&2
    fi
  fi
  rate=$(grep -a 'stat::average_exec_per_sec' "$log" | tail -1 | awk '{print $2}')
  # libFuzzer's own count of seconds.
  took=$(grep -a '^Done [0-9]* runs in' "$log" | tail -1 | awk '{print $5}')
  echo "$t: $execs executions in ${took:-?}s (${rate:-?}/s), $result"
  summary+=("$(printf '%-20s %14s %8s %10s  %s' "$t" "$execs" "${took:-?}" "${rate:-?}" "$result")")
done

{
  echo "scripts/fuzz.sh ${budget} per target, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$([ -z "$(git status --porcelain 2>/dev/null)" ] || echo ' plus uncommitted changes'), sanitizer $sanitizer"
  printf '%-20s %14s %8s %10s  %s\n' target executions seconds exec/s result
  printf '%s\n' "${summary[@]}"
} | tee -a "$logs/summary.txt"
exit $status
