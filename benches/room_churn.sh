#!/usr/bin/env bash
# Room churn load run (issue #13 item 9): the release server with a kind of 8
# seats and a short idle timeout, and BOTS release bots in `--churn` mode: each
# matchmakes, plays its room's first MATCH, leaves (close 1000) and matchmakes
# again, so rooms are opened and closed all the time (about
# BOTS / 8 / (MATCH + a join) rooms a second). 127.0.0.1 only; everything stops
# by itself after DURATION.
#
# Every 5 s the server's RSS (process_resident_memory_bytes) and its room
# figures are sampled from /metrics; the summary compares the RSS once the
# churn is steady (the first sample at or after WARMUP) with the last one of
# the run, and checks that after the bots leave the server has no room and no
# player left, and as many rooms closed as opened.
#
# Between two matches a bot is away (the pause that lets the room empty,
# matchmaking, joining): the bots may be disconnected for half their time
# before the report calls them failed.
#
# Usage:   benches/room_churn.sh
# Env:     BOTS=480  MATCH=3s  DURATION=300s  WARMUP=30s  IDLE=1s  PORT=7951
#          LOCK=never (the squad kind's lock: `full` locks a room once its 8
#          seats were taken; a duration equal to MATCH, e.g. LOCK=3s, locks
#          it when its match is over, so no bot is seated in a match that has
#          ended and matches_played counts played matches only)
#          OUT=target/load  NO_BUILD=1 (do not rebuild the release binaries)
#          BIN=target/release (where the binaries are)
set -euo pipefail

cd "$(dirname "$0")/.."
BOTS=${BOTS:-480}
MATCH=${MATCH:-3s}
DURATION=${DURATION:-300s}
WARMUP=${WARMUP:-30s}
IDLE=${IDLE:-1s}
LOCK=${LOCK:-never}
PORT=${PORT:-7951}
OUT=${OUT:-target/load}
mkdir -p "$OUT"

if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -p ticksync-server -p ticksync-bot >&2
fi
BIN=${BIN:-target/release}
SERVER=$BIN/ticksync-server
BOT=$BIN/ticksync-bot
tag="churn_b${BOTS}_m${MATCH}_${DURATION}"
log="$OUT/server_$tag.log"
json="$OUT/bots_$tag.json"
samples="$OUT/samples_$tag.tsv"

metric() { awk -v m="$1" '$1 == m {print $2}' "$2"; }
metric_sum() { awk -v m="$1" 'index($1, m "{") == 1 {s += $2} END {print s + 0}' "$2"; }
sample() {
    local t=$1 m="$OUT/metrics_$tag.txt"
    curl -sf "http://127.0.0.1:$PORT/metrics" >"$m" || return 0
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" \
        "$(awk '$1 == "process_resident_memory_bytes" {printf "%d", $2 / 1024}' "$m")" \
        "$(metric ticksync_rooms "$m")" "$(metric ticksync_players "$m")" \
        "$(metric ticksync_rooms_created_total "$m")" \
        "$(metric_sum ticksync_rooms_closed_total "$m")" >>"$samples"
}

"$SERVER" --bind "127.0.0.1:$PORT" --room-kind "squad:capacity=8,lock=$LOCK" --room-idle-timeout "$IDLE" \
    --max-rooms 1000 --max-players $((BOTS * 2)) --max-connections $((BOTS * 2 + 100)) \
    >"$log" 2>&1 &
spid=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
printf 'secs\trss_kib\trooms\tplayers\tcreated\tclosed\n' >"$samples"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(date +%s)
"$BOT" --url "ws://127.0.0.1:$PORT/ws" --bots "$BOTS" --duration "$DURATION" --ramp-up 10s \
    --matchmake --kind squad --churn "$MATCH" --json "$json" --no-progress \
    --max-disconnected-share 0.5 \
    >"$OUT/bots_$tag.txt" 2>&1 &
bpid=$!
while kill -0 "$bpid" 2>/dev/null; do
    sample $(($(date +%s) - t0))
    sleep 5
done
wait "$bpid" || true
# The bots are gone: rooms close after IDLE.
sleep "${IDLE%s}"
sleep 2
sample "after"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
kill -TERM "$spid"
wait "$spid" || true

python3 - "$samples" "$json" "${WARMUP%s}" "$BOTS" "$MATCH" "$DURATION" "$load_before" "$load_after" <<'EOF'
import json, sys
path, report, warmup, bots, match, duration, lb, la = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(path)][1:]
during = [r for r in rows if r[0] != "after" and r[1]]
after = [r for r in rows if r[0] == "after"]
steady = [r for r in during if int(r[0]) >= int(warmup)] or during
first, last = steady[0], steady[-1]
rss0, rss1 = int(first[1]), int(last[1])
peak = max(int(r[1]) for r in steady)
secs = max(int(last[0]) - int(first[0]), 1)
created = int(float(last[4])) - int(float(first[4]))
closed = int(float(last[5])) - int(float(first[5]))
r = json.load(open(report))
mm = r.get("matchmake_ms", {})
print(f"room churn: {bots} bots, matches of {match}, {duration}; load avg before {lb}, after {la}")
print(f"  steady window {first[0]}-{last[0]} s: rooms opened {created / secs:.1f}/s, closed {closed / secs:.1f}/s; "
      f"rooms open {min(int(float(x[2])) for x in steady)}-{max(int(float(x[2])) for x in steady)}")
print(f"  RSS {rss0 / 1024:.1f} MiB at {first[0]} s -> {rss1 / 1024:.1f} MiB at {last[0]} s "
      f"({(rss1 - rss0) / rss0 * 100:+.1f} %), peak {peak / 1024:.1f} MiB")
if after:
    a = after[0]
    print(f"  after the bots left: rooms {a[2]}, players {a[3]}, opened {a[4]}, closed {a[5]}, RSS {int(a[1]) / 1024:.1f} MiB")
print(f"  bots: {r['matches_played']} matches, {r['rooms_joined']} rooms joined, matchmake p50 {mm.get('p50')} / p99 {mm.get('p99')} ms, "
      f"desyncs {r['desyncs']}, errors {r['errors']}, disconnects {r['disconnects']}, passed {r['passed']}")
print(f"  server: ticks missed {r['server'].get('ticks_missed')}, tick p99 {r['server'].get('tick_duration_ms', {}).get('p99')} ms")
EOF
