#!/usr/bin/env bash
# Builds libzmq 4.3.5's own perf tools (local_thr, remote_thr, local_lat, remote_lat,
# inproc_thr, inproc_lat) from the libzmq sources that the zeromq-src crate carries in its
# vendor/ directory, so that benchmarks can run libzmq beside sp-rs in the same run.
# Output: target/zmq-perf/bin/ (the tools) and target/zmq-perf/lib/ (the libzmq.so they load).
#
# libzmq's throughput pair is PUSH/PULL and its latency pair REQ/REP (not PAIR as in NNG's and
# nanomsg's tools). `local_thr` sometimes hangs at the end of an ipc run: run every tool under
# `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
crate_version=0.3.6 # 0.3.6+4.3.5: the newest zeromq-src, vendoring libzmq 4.3.5
out=target/zmq-perf
tools=(local_thr remote_thr local_lat remote_lat inproc_thr inproc_lat)
. scripts/bench-lib.sh
perf_tools_prepare "$out" libzmq
src=$(ls -d "$out"/fetch/vendor/zeromq-src-*/vendor 2>/dev/null | head -1 || true)
if [ -z "$src" ]; then
  # Fetch the crate with cargo itself: a throwaway package that depends on it, vendored.
  mkdir -p "$out/fetch/src"
  cat >"$out/fetch/Cargo.toml" <<EOF
[package]
name = "zmq-perf-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
zeromq-src = "=$crate_version"

[workspace]
EOF
  : >"$out/fetch/src/lib.rs"
  cargo vendor -q --versioned-dirs --manifest-path "$out/fetch/Cargo.toml" "$out/fetch/vendor" >/dev/null
  src=$(ls -d "$out"/fetch/vendor/zeromq-src-*/vendor | head -1)
fi
version=$(grep -E 'define ZMQ_VERSION_(MAJOR|MINOR|PATCH)' "$src/include/zmq.h" | awk '{print $3}' | paste -sd.)
# The perf tools link the shared library; $ORIGIN/../lib finds it both in the build tree and
# in $out/bin -> $out/lib.
cmake -S "$src" -B "$out/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_POLICY_VERSION_MINIMUM=3.5 -Wno-deprecated \
  -DWITH_PERF_TOOL=ON -DBUILD_TESTS=OFF -DBUILD_STATIC=OFF -DBUILD_SHARED=ON \
  -DWITH_LIBSODIUM=OFF -DENABLE_CURVE=OFF -DWITH_DOCS=OFF -DENABLE_DRAFTS=OFF \
  -DCMAKE_BUILD_RPATH='$ORIGIN/../lib' >/dev/null
ninja -j1 -C "$out/build" "${tools[@]}" >/dev/null
mkdir -p "$out/bin" "$out/lib"
cp -P "$out"/build/lib/libzmq.so* "$out/lib/"
for t in "${tools[@]}"; do cp "$out/build/bin/$t" "$out/bin/"; done
echo "built libzmq $version perf tools (zeromq-src $crate_version) in $out/bin"
