#!/usr/bin/env bash
# Builds and runs every example of the three adapters (sp-tokio, sp-smol, sp-blocking), each
# under `timeout 60`. Every example talks over real sockets on loopback and exits by itself;
# the script fails (non-zero exit) if any example fails or times out, and names those.
#
# Usage: scripts/run-examples.sh [--release]
set -uo pipefail
cd "$(dirname "$0")/.."

profile=()
if [ "${1:-}" = "--release" ]; then
  profile=(--release)
fi

crates=(sp-tokio sp-smol sp-blocking)

# The web examples serve a page until stopped; in self-test mode they play the page's part
# themselves and exit.
export SP_EXAMPLE_SELF_TEST=1

# Build everything first, so that compile time does not count against an example's timeout.
build_args=()
for crate in "${crates[@]}"; do
  build_args+=(-p "$crate")
done
if ! cargo build -q "${profile[@]}" "${build_args[@]}" --examples; then
  echo "run-examples: building the examples failed" >&2
  exit 1
fi

failed=()
passed=0
for crate in "${crates[@]}"; do
  for file in "$crate"/examples/*.rs; do
    [ -e "$file" ] || continue
    name=$(basename "$file" .rs)
    echo "=== $crate --example $name"
    start=$(date +%s)
    timeout 60 cargo run -q "${profile[@]}" -p "$crate" --example "$name"
    rc=$?
    elapsed=$(( $(date +%s) - start ))
    if [ "$rc" -eq 0 ]; then
      echo "--- ok: $crate/$name (${elapsed}s)"
      passed=$((passed + 1))
    elif [ "$rc" -eq 124 ]; then
      echo "--- TIMED OUT: $crate/$name (after 60s)" >&2
      failed+=("$crate/$name (timed out)")
    else
      echo "--- FAILED: $crate/$name (exit $rc, ${elapsed}s)" >&2
      failed+=("$crate/$name (exit $rc)")
    fi
  done
done

echo
if [ "${#failed[@]}" -gt 0 ]; then
  echo "run-examples: ${#failed[@]} failed, $passed passed:" >&2
  for f in "${failed[@]}"; do
    echo "  $f" >&2
  done
  exit 1
fi
echo "run-examples: all $passed examples passed"
