#!/usr/bin/env bash
# Per-thread CPU of a running process over an interval: user and system time
# of each thread (/proc/PID/task/*/stat, fields 14 and 15), summed by thread
# name, as a percentage of one core. Used next to benches/load.sh to say which
# threads of the server (tick threads, tokio workers) spend what.
#
# Usage:   benches/thread_cpu.sh PID [SECONDS]     (default 10)
# Example: benches/thread_cpu.sh "$(pgrep -n ticksync-server)" 20
set -euo pipefail

exec python3 - "$1" "${2:-10}" "$(getconf CLK_TCK)" <<'EOF'
import glob, sys, time
from collections import defaultdict

pid, secs, hz = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])

def snapshot():
    """{tid: (name, utime, stime)} in clock ticks."""
    out = {}
    for path in glob.glob(f"/proc/{pid}/task/*/stat"):
        try:
            text = open(path).read()
        except OSError:
            continue  # the thread ended
        tid, rest = text.split(" (", 1)
        name, fields = rest.rsplit(") ", 1)
        f = fields.split()
        # fields[0] is stat field 3 (state): utime, stime are fields 14, 15.
        out[tid] = (name, int(f[11]), int(f[12]))
    return out

before, t0 = snapshot(), time.monotonic()
time.sleep(secs)
after, t1 = snapshot(), time.monotonic()
wall = t1 - t0

by_name = defaultdict(lambda: [0, 0, 0])
for tid, (name, u, s) in after.items():
    u0, s0 = before.get(tid, (name, 0, 0))[1:]
    row = by_name[name]
    row[0] += 1
    row[1] += u - u0
    row[2] += s - s0
print(f"per-thread CPU of {pid} over {wall:.1f} s (% of one core)")
print(f"{'thread':<24} {'n':>3} {'user':>7} {'sys':>7} {'total':>7}")
tu = ts = 0.0
for name, (n, u, s) in sorted(by_name.items(), key=lambda kv: -(kv[1][1] + kv[1][2])):
    u, s = u / hz / wall * 100, s / hz / wall * 100
    tu, ts = tu + u, ts + s
    print(f"{name:<24} {n:>3} {u:>6.1f}% {s:>6.1f}% {u + s:>6.1f}%")
print(f"{'all':<24} {'':>3} {tu:>6.1f}% {ts:>6.1f}% {tu + ts:>6.1f}%")
EOF
