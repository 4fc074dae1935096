#!/usr/bin/env bash
# Builds NNG's own perf tools (local_thr, remote_thr, local_lat, remote_lat, inproc_thr,
# inproc_lat) from the NNG 1.11 sources that ship inside the pynng sdist on PyPI, so that
# benchmarks can run NNG beside sp-rs in the same run. Output: target/nng-perf/bin/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/nng-perf
. scripts/bench-lib.sh
perf_tools_prepare "$out" NNG
if [ ! -d "$out/src" ]; then
  pip download -q --no-deps --no-binary pynng pynng==0.9.0 -d "$out/dl"
  mkdir -p "$out/src"
  tar xzf "$out"/dl/pynng-0.9.0.tar.gz -C "$out/src" --strip-components=1
fi
cmake -S "$out/src/nng" -B "$out/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DNNG_TESTS=ON -DNNG_TOOLS=OFF -DNNG_ENABLE_TLS=OFF >/dev/null
ninja -C "$out/build" local_thr remote_thr local_lat remote_lat inproc_thr inproc_lat >/dev/null
mkdir -p "$out/bin"
cp "$out"/build/src/tools/perf/{local_thr,remote_thr,local_lat,remote_lat,inproc_thr,inproc_lat} "$out/bin/"
echo "built NNG $(grep -E 'define NNG_(MAJOR|MINOR|PATCH)_VERSION' "$out/src/nng/include/nng/nng.h" | awk '{print $3}' | paste -sd.) perf tools in $out/bin"
