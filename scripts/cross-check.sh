#!/usr/bin/env bash
# Type-checks every crate, test, example and benchmark of the workspace for Windows and macOS
# from this Linux machine: `cargo check --workspace --all-targets` for
#
#   x86_64-pc-windows-gnu  x86_64-pc-windows-msvc  x86_64-apple-darwin  aarch64-apple-darwin
#
# Run by .ci/run as its last phase ("cross-target check"), not by scripts/test.sh; by hand:
# `scripts/cross-check.sh [TARGET...]`. Warnings are errors (RUSTFLAGS="-D warnings").
# Nothing is linked or run: Windows and macOS code is compiled up to type-checking only.
#
# How, with no rustup target download: Debian's `rustc-web` and `cargo-web` (a second Rust,
# /usr/bin/rustc and /usr/bin/cargo, next to the rustup toolchain that stays the default
# everywhere else) and `rust-web-src` (that version's standard-library sources) rebuild std for
# each target with `-Zbuild-std` (allowed on a stable compiler by RUSTC_BOOTSTRAP=1, for this
# command only). Its build goes to target/cross/ (or $CROSS_TARGET_DIR), apart from the
# normal target/: the two compilers' artifacts cannot be mixed.
#
# Build scripts that compile C for the target (ring; criterion's `alloca`) need a C compiler
# and an archiver for it:
#   * x86_64-pc-windows-gnu: the real MinGW-w64 cross compiler (gcc-mingw-w64-x86-64).
#   * x86_64-pc-windows-msvc and both macOS targets: no compiler exists here (no clang-cl, no
#     Windows or macOS SDK). A stand-in (target/cross/bin/stub-cc and stub-ar, written below)
#     accepts any gcc- or MSVC-style command line (cc-rs, finding no known compiler, drives it
#     MSVC-style for all three) and only creates the empty object files and empty archives it
#     was asked for. That is enough for `cargo check`, which never links; nothing built this
#     way could run.
#
# Installs its apt packages when they are missing and it runs as root (CI); elsewhere it says
# what to install. Time: about 3 minutes per two targets cold, seconds warm.
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(x86_64-pc-windows-gnu x86_64-pc-windows-msvc x86_64-apple-darwin aarch64-apple-darwin)
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=("${all_targets[@]}")
fi

packages=(rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "cross-check: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "cross-check: missing Debian packages: ${missing[*]}" >&2
    echo "cross-check: install them with: apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

RUSTC_WEB=/usr/bin/rustc
CARGO_WEB=/usr/bin/cargo
echo "cross-check: $("$RUSTC_WEB" --version), $("$CARGO_WEB" --version)"

export CARGO_TARGET_DIR="${CROSS_TARGET_DIR:-$PWD/target/cross}"
stub_dir="$CARGO_TARGET_DIR/bin"
mkdir -p "$stub_dir"

# The stand-in compiler: finds the output file in a gcc-style (-o out, -oout) or MSVC-style
# (-Fo out, /Foout, /OUT:out) command line and creates it empty. Preprocessing (-E, which
# cc-rs uses to ask which compiler this is) prints nothing.
cat >"$stub_dir/stub-cc" <<'EOF'
#!/bin/sh
out=
while [ $# -gt 0 ]; do
  case "$1" in
    -o|-Fo|/Fo) shift; out=$1 ;;
    -o*) out=${1#-o} ;;
    -Fo*|/Fo*) out=${1#???} ;;
    -OUT:*|/OUT:*|-out:*|/out:*) out=${1#*:} ;;
    --version|-v|-V) echo "stub-cc 0 (creates empty outputs; cargo check only)"; exit 0 ;;
  esac
  shift
done
[ -n "$out" ] && : >"$out"
exit 0
EOF
# The stand-in archiver: ar-style (`ar cq lib.a objs...`, `ar s lib.a`) or lib.exe-style
# (`/OUT:lib.lib objs...`); creates an empty archive.
cat >"$stub_dir/stub-ar" <<'EOF'
#!/bin/sh
out=
for a in "$@"; do
  case "$a" in
    -OUT:*|/OUT:*|-out:*|/out:*) out=${a#*:} ;;
  esac
done
if [ -z "$out" ] && [ $# -ge 2 ]; then out=$2; fi
if [ -n "$out" ] && [ ! -s "$out" ]; then printf '!<arch>\n' >"$out"; fi
exit 0
EOF
chmod +x "$stub_dir/stub-cc" "$stub_dir/stub-ar"

failed=()
for target in "${targets[@]}"; do
  var=${target//-/_}
  case "$target" in
    x86_64-pc-windows-gnu)
      cc=x86_64-w64-mingw32-gcc
      ar=x86_64-w64-mingw32-ar
      ;;
    *)
      cc="$stub_dir/stub-cc"
      ar="$stub_dir/stub-ar"
      ;;
  esac
  echo "=== cross-check ${target}"
  t0=$SECONDS
  if env "CC_${var}=${cc}" "AR_${var}=${ar}" \
    RUSTC="$RUSTC_WEB" RUSTC_BOOTSTRAP=1 RUSTFLAGS="-D warnings" \
    "$CARGO_WEB" check -q --keep-going -Zbuild-std --target "$target" --workspace --all-targets --locked; then
    echo "=== cross-check ${target}: ok, $((SECONDS - t0)) s"
  else
    echo "=== cross-check ${target}: FAILED after $((SECONDS - t0)) s"
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "cross-check: failed for ${failed[*]}" >&2
  exit 1
fi
echo "cross-check: ${targets[*]}: every crate, test, example and benchmark type-checks"
