#!/usr/bin/env bash
# Installs the interop peers the tests talk to: nngcat (nng-utils), nanocat (nanomsg-utils),
# pynng, and Chromium (Debian's `chromium`, run headless by tests/tests/browser.rs). Safe to run repeatedly: does nothing for peers already present.
#
#   scripts/install-peers.sh            # best effort: quietly skips what cannot be installed
#   scripts/install-peers.sh --strict   # fails if any peer is still missing at the end
#
# Installing needs root (apt-get) and network access; without them the tests print
# "skipping: ..." for the missing peers instead of failing (unless SP_REQUIRE_PEERS=1).
set -uo pipefail

strict=0
[ "${1:-}" = "--strict" ] && strict=1

log() { echo "install-peers: $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
have_pynng() { have python3 && python3 -c 'import pynng' >/dev/null 2>&1; }

is_root=0
[ "$(id -u)" = "0" ] && is_root=1

# Best effort is quiet; --strict (CI) shows the installers' output so a failure is explained.
quietly() {
    if [ "$strict" = 1 ]; then "$@" >&2; else "$@" >/dev/null 2>&1; fi
}

apt_updated=0
apt_install() {
    [ "$is_root" = 1 ] && have apt-get || return 1
    if [ "$apt_updated" = 0 ]; then
        quietly env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
        apt_updated=1
    fi
    quietly env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "$@"
}

if ! have nngcat; then
    log "installing nng-utils (nngcat)"
    apt_install nng-utils || log "could not install nng-utils"
fi
if ! have nanocat; then
    log "installing nanomsg-utils (nanocat)"
    apt_install nanomsg-utils || log "could not install nanomsg-utils"
fi
if ! have_pynng; then
    log "installing pynng"
    if ! have python3; then
        apt_install python3 python3-pip || log "could not install python3"
    fi
    if have python3 && ! python3 -m pip --version >/dev/null 2>&1; then
        apt_install python3-pip || log "could not install python3-pip"
    fi
    if have python3 && python3 -m pip --version >/dev/null 2>&1; then
        pip_args=(install --quiet --disable-pip-version-check pynng)
        # Debian's python refuses system-wide pip installs (PEP 668); retry with the override.
        quietly python3 -m pip "${pip_args[@]}" \
            || quietly python3 -m pip "${pip_args[@]}" --break-system-packages \
            || quietly python3 -m pip "${pip_args[@]}" --user --break-system-packages \
            || log "could not pip install pynng"
    fi
fi

if ! have chromium && ! have chromium-browser && ! have google-chrome; then
    log "installing chromium (the browser tests' peer)"
    apt_install chromium || log "could not install chromium"
fi

missing=()
have nngcat || missing+=(nngcat)
have nanocat || missing+=(nanocat)
have_pynng || missing+=(pynng)
have chromium || have chromium-browser || have google-chrome || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
    log "missing peers: ${missing[*]} (their tests will skip)"
    [ "$strict" = 1 ] && exit 1
else
    log "peers present: nngcat, nanocat, pynng, chromium"
fi
exit 0
