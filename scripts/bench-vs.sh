#!/usr/bin/env bash
# Runs sp-rs, the raw-TCP baseline, NNG, nanomsg and libzmq one after another in the same run
# on this machine, each with its own perf tools, and draws the table as an SVG bar chart.
#
#   scripts/bench-vs.sh [thr-count] [lat-roundtrips] [repeats]
#
# Rows: throughput (msg/s) with 64 B messages over tcp, ipc and inproc, with 1400 B and
# 65536 B messages over tcp (thr-count * 3/10 and thr-count / 50 messages; the 65536 B row is
# also given in MB/s, 10^6 bytes), and with 64 B messages over tcp and inproc handed 64 per
# call to sp-rs's sockets (`send_many`, `recv_many`; sp-rs only), one-way latency (us) with 64 B messages over tcp, ipc
# and inproc; REQ/REP round trips/s with 100 contexts in flight (thr-count * 3/10 round
# trips) and with 1 (lat-roundtrips), against sp-perf raw_pipelined_thr at the same depth,
# and sp-blocking's thread per context against raw_threads_thr (a blocking thread at each end
# of 100 TCP connections);
# PUB/SUB fan-out to 4 subscribers over tcp (thr-count / 5 messages sent), against
# raw_fanout_thr, and the share delivered with the publisher paced at 1,000,000 msg/s for a
# second, with the rate the publisher kept in those paced runs (these have no NNG, nanomsg or
# libzmq tool); and the anonymous resident memory (KiB)
# each side of the tcp 64 B throughput run adds to the same program at rest (peak of the run
# minus peak of a one-message run), and the CPU time each side of that run uses per message
# (ns, user and system). Every figure is the median of `repeats` runs, taken in
# rounds (each round runs every column of the row once); every process runs under
# `timeout` (BENCH_TIMEOUT seconds, default 60) and a run that times out counts as missing
# ("hung"), never as a number. A library whose tools could not be built shows "—".
#
# sp-rs is sp-perf on tokio with default settings, PAIR v1 (as NNG's tools); nanomsg's tools
# use PAIR v0; libzmq's use PUSH/PULL for throughput and REQ/REP for latency. The same sp-perf
# rows run again on the smol and blocking adapters (the last two columns), and the table
# gives the slowest adapter's distance from the fastest on each row. Each runtime runs with
# its own default thread count, as a user's program would: tokio one worker per core, smol's
# global executor one thread (SMOL_THREADS).
#
# Output: a Markdown table on stdout and in target/bench-vs/results.md, the medians in
# target/bench-vs/results.csv (read by sp-bench-chart), every run in target/bench-vs/runs.tsv,
# and the chart in target/bench-vs/bench-vs.svg.
set -uo pipefail
cd "$(dirname "$0")/.."
thr_count=${1:-1000000}
lat_trips=${2:-20000}
repeats=${3:-3}
limit=${BENCH_TIMEOUT:-60}
out=target/bench-vs
cargo build -q --release -p sp-tools
scripts/build-nng-perf.sh >/dev/null
for lib in zmq nanomsg; do
  scripts/build-$lib-perf.sh >/dev/null ||
    echo "bench-vs: $lib perf tools did not build: its column shows —" >&2
done
sp="target/release/sp-perf "
sp_smol="target/release/sp-perf --runtime smol "
sp_blocking="target/release/sp-perf --runtime blocking "
nng=target/nng-perf/bin/
nn=target/nanomsg-perf/bin/
zmq=target/zmq-perf/bin/
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
port=$((20000 + RANDOM % 20000))
mkdir -p "$out"

. scripts/bench-lib.sh

# lim <cmd...>: runs the command under `timeout`; a run that times out says so.
lim() {
  timeout -k 2 "$limit" "$@"
  local rc=$?
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo "bench-vs: timed out: $*"; fi
  return $rc
}

# What `cell` takes from the line its regex finds: the first number after a colon.
pick='s/.*: ?([0-9.]+).*/\1/'

# run_once <regex> <cmd...>: one run of the command (PORT replaced by a fresh port); sets RUN
# to the number its regex finds, "hung" if it timed out, "nan" if it gave none.
run_once() {
  local regex=$1 o v; shift
  port=$((port + 1))
  local args=("${@//PORT/$port}")
  if printf '%s\n' "${args[@]}" | grep -qx -- '--'; then
    o=$(pair_run "${args[@]}")
  else
    o=$("${args[@]}" 2>&1)
  fi
  if grep -q '^bench-vs: timed out' <<<"$o"; then
    v=hung
  else
    v=$(grep -E "$regex" <<<"$o" | head -1 | sed -E "$pick")
  fi
  RUN=${v:-nan}
}

# cell_of <run run ...>: sets CELL to "median|run run ...". The median is over the runs that
# gave a number (the Markdown table says how many others hung); "hung" when every run timed
# out, "—" when none gave a number.
cell_of() {
  local nums
  nums=$(printf '%s\n' "$@" | grep -E '^[0-9.]+$')
  if [ -n "$nums" ]; then
    CELL="$(median <<<"$nums")|$*"
  elif printf '%s\n' "$@" | grep -qx hung; then
    CELL="hung|$*"
  else
    CELL="—|$*"
  fi
}

# cell <regex> <cmd...>: `repeats` runs of one command in a row (the memory rows); sets CELL.
cell() {
  local regex=$1 vals=() i; shift
  for i in $(seq 1 "$repeats"); do
    run_once "$regex" "$@"
    vals+=("$RUN")
  done
  cell_of "${vals[@]}"
}

# Rounds: a row runs each of its columns once per round, `repeats` rounds, so that a slower
# minute of the host falls on every column of the row alike rather than on one column's
# runs (the host's speed drifted by a third within some runs). Each column is a spec line
# "<regex>\t<arg>\t<arg>..." in SPECS, or "-<cell>" for a column with no tool here.
SPECS=()

# spec <regex> <cmd...>: adds a column to the row being built.
spec() {
  local line=$1 a; shift
  for a in "$@"; do line+=$'\t'"$a"; done
  SPECS+=("$line")
}

# run_specs <line-prefix>: runs the row's columns round by round, then appends the row.
run_specs() {
  local line=$1 r c n=${#SPECS[@]} parts
  local -a runs=()
  for ((c = 0; c < n; c++)); do runs[c]=""; done
  for r in $(seq 1 "$repeats"); do
    for ((c = 0; c < n; c++)); do
      case ${SPECS[c]} in -*) continue ;; esac
      IFS=$'\t' read -r -a parts <<<"${SPECS[c]}"
      run_once "${parts[@]}"
      runs[c]+=" $RUN"
    done
  done
  for ((c = 0; c < n; c++)); do
    case ${SPECS[c]} in
      -*) CELL=${SPECS[c]#-} ;;
      *) cell_of ${runs[c]} ;;
    esac
    line+="	$CELL"
  done
  echo "$line" >>"$tmp/rows"
  SPECS=()
}

# built <tool-prefix>: whether that library's tools were built (the executable its
# local_thr runs: the prefix's first word, with local_thr appended to a directory's path).
built() {
  local first=${1}local_thr
  [ -x "${first%% *}" ]
}

# lib_spec <tool-prefix> <thr|lat> <url|inproc> <size> <count>: one library's column, with
# its local_*/remote_* pair or its inproc_* tool (same arguments in all five tool sets).
lib_spec() {
  local p=$1 kind=$2 url=$3 size=$4 n=$5 regex
  case $kind in thr) regex="throughput: [0-9.]+ \[msg/s\]" ;; *) regex="average latency" ;; esac
  if ! built "$p"; then SPECS+=("-—|not built"); return; fi
  if [ "$url" = inproc ]; then
    spec "$regex" lim ${p}inproc_$kind "$size" "$n"
  else
    spec "$regex" lim ${p}local_$kind "$url" "$size" "$n" -- lim ${p}remote_$kind "$url" "$size" "$n"
  fi
}

libs=(sp-rs raw NNG nanomsg libzmq "sp-rs smol" "sp-rs blocking")
# row <group> <case> <unit> <better> <thr|lat> <url|inproc> <size> <count>
row() {
  local group=$1 case=$2 unit=$3 better=$4 kind=$5 url=$6 size=$7 n=$8
  lib_spec "$sp" "$kind" "$url" "$size" "$n"
  case $url in
    tcp://*) lib_spec "${sp}raw_" "$kind" "$url" "$size" "$n" ;;
    *) SPECS+=("-—|n/a") ;;
  esac
  lib_spec "$nng" "$kind" "$url" "$size" "$n"
  lib_spec "$nn" "$kind" "$url" "$size" "$n"
  lib_spec "$zmq" "$kind" "$url" "$size" "$n"
  lib_spec "$sp_smol" "$kind" "$url" "$size" "$n"
  lib_spec "$sp_blocking" "$kind" "$url" "$size" "$n"
  run_specs "$group	$case	$unit	$better"
  echo "bench-vs: $case $kind done" >&2
}

T=tcp://127.0.0.1:PORT
I=ipc://$tmp/bench-PORT.sock
n1400=$((thr_count * 3 / 10)); [ $n1400 -ge 1 ] || n1400=1
n64k=$((thr_count / 50)); [ $n64k -ge 1 ] || n64k=1
: >"$tmp/rows"
row throughput "tcp 64 B"    msg/s higher thr "$T"   64    "$thr_count"
row throughput "ipc 64 B"    msg/s higher thr "$I"   64    "$thr_count"
row throughput "inproc 64 B" msg/s higher thr inproc 64    "$thr_count"
row throughput "tcp 1400 B"  msg/s higher thr "$T"   1400  "$n1400"
row throughput "tcp 65536 B" msg/s higher thr "$T"   65536 "$n64k"
# The 64 B rows again with sp-rs handing 64 messages per call each way (`send_many`,
# `recv_many`: sp-perf --send-batch and --recv-batch); the other libraries' perf tools have
# no such option (their cells show n/a), and the raw baseline writes and reads in bulk anyway.
batches="--send-batch 64 --recv-batch 64 "
batch_row() { # <case> <url|inproc>
  lib_spec "$sp$batches" thr "$2" 64 "$thr_count"
  case $2 in
    tcp://*) lib_spec "${sp}raw_" thr "$2" 64 "$thr_count" ;;
    *) SPECS+=("-—|n/a") ;;
  esac
  SPECS+=("-—|n/a" "-—|n/a" "-—|n/a")
  lib_spec "$sp_smol$batches" thr "$2" 64 "$thr_count"
  lib_spec "$sp_blocking$batches" thr "$2" 64 "$thr_count"
  run_specs "throughput	$1	msg/s	higher"
  echo "bench-vs: $1 done" >&2
}
batch_row "tcp 64 B in batches of 64" "$T"
batch_row "inproc 64 B in batches of 64" inproc
# The 65536 B row again in MB/s (10^6 bytes), from the same medians.
awk -F'\t' -v OFS='\t' '$2 == "tcp 65536 B" {
    $1 = "bandwidth"; $3 = "MB/s"
    for (i = 5; i <= NF; i++) {
      split($i, c, "|")
      if (c[1] ~ /^[0-9.]+$/) c[1] = sprintf("%.1f", c[1] * 65536 / 1e6)
      $i = c[1] "|" c[2]
    }
    print
  }' "$tmp/rows" >"$tmp/mbs"
cat "$tmp/mbs" >>"$tmp/rows"
row latency "tcp 64 B"    us lower lat "$T"   64 "$lat_trips"
row latency "ipc 64 B"    us lower lat "$I"   64 "$lat_trips"
row latency "inproc 64 B" us lower lat inproc 64 "$lat_trips"

# sp_row <group> <case> <unit> <better> <regex> <raw-mode|-> <mode> <args...>: a row of
# sp-perf's own modes, which NNG's, nanomsg's and libzmq's perf tools do not have (their cells
# show —); the raw column runs <raw-mode> with the same arguments (tcp only).
sp_row() {
  local group=$1 case=$2 unit=$3 better=$4 regex=$5 raw=$6
  shift 6
  spec "$regex" lim $sp "$@"
  if [ "$raw" = - ]; then
    SPECS+=("-—|n/a")
  else
    spec "$regex" lim ${sp}"$raw" "${@:2}"
  fi
  SPECS+=("-—|n/a" "-—|n/a" "-—|n/a")
  spec "$regex" lim $sp_smol "$@"
  spec "$regex" lim $sp_blocking "$@"
  run_specs "$group	$case	$unit	$better"
  echo "bench-vs: $case done" >&2
}
RT="round trips/s"
ctx_trips=$((thr_count * 3 / 10)); [ $ctx_trips -ge 1 ] || ctx_trips=1
sp_row contexts "REQ/REP tcp 100 in flight" "$RT" higher "$RT" raw_pipelined_thr \
  req_ctx_thr "$T" 100 64 "$ctx_trips"
sp_row contexts "REQ/REP tcp 1 in flight" "$RT" higher "$RT" raw_pipelined_thr \
  req_ctx_thr "$T" 1 64 "$lat_trips"
# The same 100 in flight from one task (sp-blocking: one thread) per side, each waiting on its
# contexts with a RecvSet; the raw baseline is the row above's.
sp_row contexts "REQ/REP tcp 100 in flight: one RecvSet per side" "$RT" higher "$RT" - \
  req_ctx_thr --set "$T" 100 64 "$ctx_trips"
# sp-blocking's cell of the 100-in-flight row runs a thread per context (100 per side); its
# baseline is raw_threads_thr: 100 TCP connections with a blocking std thread at each end, the
# least that a thread per request costs. The other cells are in the rows above.
SPECS+=("-—|n/a")
spec "$RT" lim ${sp}raw_threads_thr "$T" 100 64 "$ctx_trips"
SPECS+=("-—|n/a" "-—|n/a" "-—|n/a" "-—|n/a")
spec "$RT" lim $sp_blocking req_ctx_thr "$T" 100 64 "$ctx_trips"
run_specs "contexts	REQ/REP tcp 100 in flight: a thread per context	$RT	higher"
echo "bench-vs: REQ/REP a thread per context done" >&2
fan_count=$((thr_count / 5)); [ $fan_count -ge 1 ] || fan_count=1
sp_row fan-out "PUB/SUB tcp 1 PUB to 4 SUBs" "msg/s delivered" higher "delivered in total" \
  raw_fanout_thr fanout_thr "$T" 4 64 "$fan_count"
# Paced at 1,000,000 msg/s for one second: the share of the 4,000,000 copies delivered (the
# percentage in "messages delivered: N of M (P%)"; `pick` set for this call only).
pick='s/.*\(([0-9.]+)%\).*/\1/' \
  sp_row fan-out "paced at 1 M msg/s: % delivered" "%" higher "messages delivered" - \
  fanout_thr --rate 1000000 "$T" 4 64 1000000
# The same paced runs again: the rate the publisher kept. A publisher that shares its thread
# with its subscribers (smol's one executor thread) falls behind the schedule, and then loses
# nothing because it sent less, not because the subscribers took 1,000,000 msg/s each.
sp_row fan-out "paced at 1 M msg/s: publisher's rate" "msg/s sent" higher "send rate" - \
  fanout_thr --rate 1000000 "$T" 4 64 1000000

# mem_cell <tool-prefix> <recv|send>: KiB that one side of the tcp 64 B throughput run adds to
# the same program at rest: its peak anonymous resident memory (RssAnon, sampled every
# millisecond by scripts/peak-anon.py) in a run of thr-count messages minus that in a run of
# one message (start, connect, one message, exit). Anonymous memory is what a program
# allocates; the file-backed rest of the resident set (code paged in) moved by hundreds of KiB
# between identical runs here.
mem_cell() {
  local p=$1 side=$2 n full rest
  if ! built "$p"; then CELL="—|not built"; return; fi
  for n in "$thr_count" 1; do
    if [ "$side" = recv ]; then
      cell "rss:" lim scripts/peak-anon.py ${p}local_thr "$T" 64 "$n" -- lim ${p}remote_thr "$T" 64 "$n"
    else
      cell "rss:" lim ${p}local_thr "$T" 64 "$n" -- lim scripts/peak-anon.py ${p}remote_thr "$T" 64 "$n"
    fi
    if [ "$n" = 1 ]; then rest=$CELL; else full=$CELL; fi
  done
  if [[ ${full%%|*} =~ ^[0-9]+$ && ${rest%%|*} =~ ^[0-9]+$ ]]; then
    CELL="$(( ${full%%|*} - ${rest%%|*} ))|peak ${full#*|} at rest ${rest#*|}"
  else
    CELL="—|peak ${full#*|} at rest ${rest#*|}"
  fi
}
# mem_row <case> <recv|send>
mem_row() {
  local line="memory	$1	KiB	lower"
  mem_cell "$sp" "$2"; line+="	$CELL"
  line+="	—|n/a"
  mem_cell "$nng" "$2"; line+="	$CELL"
  mem_cell "$nn" "$2"; line+="	$CELL"
  mem_cell "$zmq" "$2"; line+="	$CELL"
  mem_cell "$sp_smol" "$2"; line+="	$CELL"
  mem_cell "$sp_blocking" "$2"; line+="	$CELL"
  echo "$line" >>"$tmp/rows"
  echo "bench-vs: $1 memory done" >&2
}
if [ -r /proc/self/status ] && command -v python3 >/dev/null; then
  mem_row "tcp 64 B receiver adds" recv
  mem_row "tcp 64 B sender adds" send
else
  echo "bench-vs: memory rows need Linux's /proc and python3: no memory rows" >&2
fi

# cpu_spec <tool-prefix> <recv|send>: a column of a CPU row: the CPU time (user and system,
# all threads, `scripts/cpu-time.py`) that one side of the tcp 64 B throughput run of
# thr-count messages used, in ns per message. Steadier than the rates on a host whose
# speed drifts: a core lent elsewhere for a moment stretches the run, not its CPU time.
cpu_spec() {
  local p=$1 side=$2 n=$thr_count
  if ! built "$p"; then SPECS+=("-—|not built"); return; fi
  local per=(scripts/cpu-time.py --per "$n")
  if [ "$side" = recv ]; then
    spec "^cpu:" lim "${per[@]}" ${p}local_thr "$T" 64 "$n" -- lim ${p}remote_thr "$T" 64 "$n"
  else
    spec "^cpu:" lim ${p}local_thr "$T" 64 "$n" -- lim "${per[@]}" ${p}remote_thr "$T" 64 "$n"
  fi
}
# cpu_row <case> <recv|send>
cpu_row() {
  cpu_spec "$sp" "$2"
  cpu_spec "${sp}raw_" "$2"
  cpu_spec "$nng" "$2"
  cpu_spec "$nn" "$2"
  cpu_spec "$zmq" "$2"
  cpu_spec "$sp_smol" "$2"
  cpu_spec "$sp_blocking" "$2"
  run_specs "CPU	$1	ns per message	lower"
  echo "bench-vs: $1 CPU done" >&2
}
if command -v python3 >/dev/null; then
  cpu_row "tcp 64 B receiver" recv
  cpu_row "tcp 64 B sender" send
else
  echo "bench-vs: the CPU rows need python3: no CPU rows" >&2
fi

# results.csv: the medians (missing as —); runs.tsv: every run.
{
  echo "# scripts/bench-vs.sh $thr_count $lat_trips $repeats, $(date -u +%Y-%m-%dT%H:%MZ)"
  (IFS=,; echo "group,case,unit,better,${libs[*]}")
  awk -F'\t' -v OFS=',' '{for (i = 5; i <= NF; i++) {split($i, c, "|"); $i = c[1]} print}' "$tmp/rows"
} >"$out/results.csv"
{
  printf 'group\tcase\tlibrary\truns\n'
  awk -F'\t' -v libs="$(IFS=,; echo "${libs[*]}")" 'BEGIN {split(libs, L, ",")}
    {for (i = 5; i <= NF; i++) {split($i, c, "|"); print $1 "\t" $2 "\t" L[i - 4] "\t" c[2]}}' "$tmp/rows"
} >"$out/runs.tsv"
awk -F'\t' '
  function num(s) { return s ~ /^[0-9.]+$/ }
  BEGIN {
    print "| case | sp-rs | raw | NNG | nanomsg | libzmq | sp-rs / libzmq | sp-rs smol | sp-rs blocking | slowest adapter |"
    print "|---|---|---|---|---|---|---|---|---|---|"
  }
  $1 != group {
    group = $1
    print "| **" $1 " (" $3 ", " $4 " is better)** | | | | | | | | | |"
  }
  {
    line = "| " $2
    for (i = 5; i <= 11; i++) {
      split($i, c, "|"); v[i] = c[1]
      hung = gsub(/hung/, "hung", c[2])
      cells[i] = c[1] ((num(c[1]) && hung) ? " (" hung " hung)" : "")
    }
    for (i = 5; i <= 9; i++) line = line " | " cells[i]
    ratio = (num(v[5]) && num(v[9]) && v[9] + 0 > 0) ? sprintf("%.2f", v[5] / v[9]) : "—"
    # How far the slowest of the three adapters (tokio, smol, blocking) is behind the best.
    spread = "—"
    if (num(v[5]) && num(v[10]) && num(v[11])) {
      lo = v[5]; hi = v[5]
      for (i = 10; i <= 11; i++) { if (v[i] + 0 < lo + 0) lo = v[i]; if (v[i] + 0 > hi + 0) hi = v[i] }
      if (lo + 0 > 0) spread = sprintf("%.2f × behind", hi / lo)
    }
    print line " | " ratio " | " cells[10] " | " cells[11] " | " spread " |"
  }' "$tmp/rows" >"$out/results.md"
cat "$out/results.md"
echo
echo "libzmq: PUSH/PULL (throughput), REQ/REP (latency); nanomsg: PAIR v0; sp-rs, NNG: PAIR v1." \
  "sp-rs / libzmq: above 1 is sp-rs ahead for throughput, below 1 for latency, memory and CPU." \
  "slowest adapter: the best of sp-rs's three adapters over the worst (worst over best where lower is better)." \
  "hung = every run timed out after ${limit}s; every run is in $out/runs.tsv."
target/release/sp-bench-chart "$out/results.csv" "$out/bench-vs.svg" \
  "sp-rs (tokio, smol, blocking), raw TCP, NNG, nanomsg, libzmq in the same run (median of $repeats)" &&
  echo "chart: $out/bench-vs.svg"
