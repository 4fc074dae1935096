#!/usr/bin/env bash
# Builds nanomsg's own perf tools (local_thr, remote_thr, local_lat, remote_lat, inproc_thr,
# inproc_lat) from Debian's nanomsg source package (1.1.5 in bookworm), so that benchmarks can
# run nanomsg beside sp-rs in the same run. Output: target/nanomsg-perf/bin/ (statically
# linked against libnanomsg).
#
# The sources come through apt with a private deb-src list made from this machine's Debian
# sources, and apt's lists and caches for it under target/: nothing in /etc/apt or /var is
# changed. Needs apt-get and the Debian mirror the machine already uses.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/nanomsg-perf
tools=(local_thr remote_thr local_lat remote_lat inproc_thr inproc_lat)
. scripts/bench-lib.sh
perf_tools_prepare "$out" nanomsg
if [ ! -f "$out/src/CMakeLists.txt" ]; then
  command -v apt-get >/dev/null || { echo "build-nanomsg-perf: no apt-get" >&2; exit 1; }
  apt_dir=$(pwd)/$out/apt
  mkdir -p "$apt_dir/parts" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$out/dl"
  # deb-src twins of the machine's deb entries (deb822 and one-line formats).
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && sed -E 's/^Types: *deb$/Types: deb-src/' "$f" >"$apt_dir/parts/$(basename "$f")"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && sed -nE 's/^deb (.*)/deb-src \1/p' "$f" >"$apt_dir/parts/$(basename "$f")"
  done
  apt_opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt_dir/parts"
            -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
            -o Debug::NoLocking=1)
  apt-get "${apt_opts[@]}" -qq update >/dev/null 2>&1 || true
  # Only the upstream tarball is needed; a missing debian.tar.xz does not matter.
  (cd "$out/dl" && apt-get "${apt_opts[@]}" -qq source --download-only nanomsg >/dev/null 2>&1 || true)
  orig=$(ls "$out"/dl/nanomsg_*.orig.tar.* 2>/dev/null | head -1 || true)
  if [ -z "$orig" ]; then
    echo "build-nanomsg-perf: apt found no nanomsg source package" >&2
    exit 1
  fi
  mkdir -p "$out/src"
  tar xf "$orig" -C "$out/src" --strip-components=1
fi
cmake -S "$out/src" -B "$out/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_POLICY_VERSION_MINIMUM=3.5 -Wno-deprecated \
  -DNN_TESTS=ON -DNN_TOOLS=OFF -DNN_ENABLE_DOC=OFF -DNN_STATIC_LIB=ON >/dev/null
ninja -j1 -C "$out/build" "${tools[@]}" >/dev/null
mkdir -p "$out/bin"
for t in "${tools[@]}"; do cp "$out/build/$t" "$out/bin/"; done
echo "built nanomsg $(cat "$out/src/.version" 2>/dev/null || echo '(unknown version)') perf tools in $out/bin"
