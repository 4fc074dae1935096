#!/usr/bin/env python3
"""Runs a command and prints its peak anonymous resident memory as `rss:<KiB>`.

Usage: scripts/peak-anon.py <command> [args...]

Samples RssAnon in /proc/<pid>/status while the command runs (Linux only), without a pause
for its first 0.2 s and every millisecond after that, counting only samples taken once the
child runs the command's own executable. Anonymous memory is the heap, stacks and buffers a
program allocates; the file-backed pages of its executable and libraries (the rest of the
resident set) move by hundreds of KiB between two identical runs as code is paged in, which
hides what a run adds. The command's output passes through, and its
exit status is this script's.
"""
import os
import subprocess
import sys
import time


FAST_SAMPLING = 0.2


def anon_kib(pid, exe):
    try:
        if os.readlink(f"/proc/{pid}/exe") != exe:
            return None  # still the forked interpreter, before exec
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: peak-anon.py <command> [args...]")
    exe = os.path.realpath(subprocess.run(
        ["sh", "-c", 'command -v "$0"', sys.argv[1]], capture_output=True, text=True
    ).stdout.strip() or sys.argv[1])
    child = subprocess.Popen(sys.argv[1:])
    started = time.monotonic()
    peak = None
    while child.poll() is None:
        kib = anon_kib(child.pid, exe)
        if kib is not None and (peak is None or kib > peak):
            peak = kib
        # A short run (the one-message run a long one is compared with) lives a few
        # milliseconds after its exec, and its memory grows until it exits: sampled every
        # millisecond, it showed 32 KiB in some runs and 420 in others. For its first
        # FAST_SAMPLING seconds the command is sampled without a pause.
        if time.monotonic() - started > FAST_SAMPLING:
            time.sleep(0.001)
    if peak is not None:
        print(f"rss:{peak}", flush=True)
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
