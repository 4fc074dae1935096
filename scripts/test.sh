#!/usr/bin/env bash
# Runs every test of the workspace. Installs the interop peers first when it can (root and
# network); otherwise their tests print "skipping: ..." (or fail under SP_REQUIRE_PEERS=1).
# Extra arguments go to `cargo test`, e.g. `./scripts/test.sh -p sp-tests --test bad_input`;
# without them the examples run too (scripts/run-examples.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-peers.sh || true
cargo test --workspace --no-fail-fast "$@"
# Every example of every adapter runs to its end over real sockets (skipped when arguments
# narrow the run to some tests).
if [ $# -eq 0 ]; then
  scripts/run-examples.sh
fi
