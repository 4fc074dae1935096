#!/usr/bin/env python3
"""Runs a command and prints the CPU time it used, per item, as `cpu: <ns>`.

Usage: scripts/cpu-time.py --per <items> <command> [args...]

The CPU time is user plus system time of the command and all its threads (the rusage of
the waited-for child), divided by `items` (the messages one side of a throughput run
handled), in nanoseconds. Unlike a rate, it hardly moves when the host lends a core to
someone else for a moment, which makes it the steadier measure of what a message costs on a
noisy machine. The command's output passes through, and its exit status is this script's.
"""
import os
import subprocess
import sys


def main():
    args = sys.argv[1:]
    if len(args) < 3 or args[0] != "--per":
        sys.exit("usage: cpu-time.py --per <items> <command> [args...]")
    try:
        items = int(args[1])
    except ValueError:
        sys.exit(f"cpu-time.py: --per wants a whole number, not {args[1]!r}")
    if items <= 0:
        sys.exit("cpu-time.py: --per wants at least 1")
    child = subprocess.Popen(args[2:])
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    cpu_ns = (usage.ru_utime + usage.ru_stime) * 1e9
    print(f"cpu: {cpu_ns / items:.1f}", flush=True)
    sys.exit(child.returncode if child.returncode >= 0 else 128 - child.returncode)


if __name__ == "__main__":
    main()
