#!/usr/bin/env bash
# Load runs, end to end: the release server and the release bot binary on this
# machine, talking over 127.0.0.1 only; every run stops by itself (the bots run
# for DURATION, then the server gets SIGTERM). Prints one table (markdown) and
# keeps each run's bot report and server log under OUT.
#
# Usage:   benches/load.sh
# Env:     SIZES="500 1000 2000"   bot counts
#          RADII="100 0"           view radii in world units (0 = everyone sees everyone)
#          CELL=0                  --view-cell (0 = exact per-client circles)
#          DURATION=60s            per run, ramp-up included
#          RAMP=10s                ramp-up (bots connect evenly over it)
#          SKIP="2000/0"           size/radius pairs not to run (too big for the box)
#          OUT=target/load         where reports and logs go
#          NO_BUILD=1              do not (re)build the release binaries
#
# Example (the 10-minute soak): SIZES=2000 RADII=100 DURATION=600s benches/load.sh
set -euo pipefail

cd "$(dirname "$0")/.."
SIZES=${SIZES:-"500 1000 2000"}
RADII=${RADII:-"100 0"}
CELL=${CELL:-0}
DURATION=${DURATION:-60s}
RAMP=${RAMP:-10s}
SKIP=${SKIP:-"2000/0"}
OUT=${OUT:-target/load}
PORT=${PORT:-7931}
mkdir -p "$OUT"

if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -p ticksync-server -p ticksync-bot >&2
fi
SERVER=target/release/ticksync-server
BOT=target/release/ticksync-bot
HZ=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

rows=()
for radius in $RADII; do
    for bots in $SIZES; do
        case " $SKIP " in *" $bots/$radius "*)
            rows+=("| $bots | $radius | $CELL | not run (SKIP: does not fit this machine) |||||||||||")
            continue ;;
        esac
        tag="b${bots}_r${radius}_c${CELL}_${DURATION}"
        log="$OUT/server_$tag.log"
        json="$OUT/bots_$tag.json"
        "$SERVER" --bind "127.0.0.1:$PORT" --view-radius "$radius" --view-cell "$CELL" \
            --max-players $((bots + 100)) --max-connections $((bots + 100)) \
            --max-connections-per-ip $((bots + 100)) >"$log" 2>&1 &
        spid=$!
        for _ in $(seq 100); do
            curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
            sleep 0.1
        done
        rss0=$(rss_kib "$spid")
        cpu0=$(cpu_ticks "$spid")
        t0=$(date +%s.%N)
        load_before=$(cut -d' ' -f1-3 /proc/loadavg)
        # Sample the server's RSS while the bots run: the table shows the peak.
        (
            peak=0
            while kill -0 "$spid" 2>/dev/null; do
                r=$(rss_kib "$spid" 2>/dev/null || echo 0)
                [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" >"$OUT/rss_$tag"
                sleep 1
            done
        ) &
        sampler=$!
        "$BOT" --url "ws://127.0.0.1:$PORT/ws" --bots "$bots" --duration "$DURATION" \
            --ramp-up "$RAMP" --input-rate 30 --json "$json" --no-progress \
            --metrics-url "http://127.0.0.1:$PORT/metrics" >"$OUT/bots_$tag.txt" 2>&1 || true
        t1=$(date +%s.%N)
        cpu1=$(cpu_ticks "$spid")
        kill -TERM "$spid"
        wait "$spid" || true
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        rss_peak=$(cat "$OUT/rss_$tag" 2>/dev/null || echo 0)
        row=$(python3 - "$json" "$bots" "$radius" "$CELL" "$cpu0" "$cpu1" "$t0" "$t1" "$HZ" \
            "$rss0" "$rss_peak" "$load_before" <<'EOF'
import json, sys
(path, bots, radius, cell, cpu0, cpu1, t0, t1, hz, rss0, peak, load) = sys.argv[1:]
try:
    r = json.load(open(path))
except Exception as e:
    print(f"| {bots} | {radius} | {cell} | no report ({e}) |||||||||||")
    sys.exit()
s = r["server"]
td = s.get("tick_duration_ms") or {}
fmt = lambda v: "?" if v is None else f"{v:.2f}"
conn = max(r["bots_connected"], 1)
cpu = (float(cpu1) - float(cpu0)) / float(hz) / (float(t1) - float(t0)) * 100
per_conn = (int(peak) - int(rss0)) / conn
print(f"| {bots} | {radius} | {cell} | {r['bots_connected']} "
      f"| {fmt(td.get('p50'))} / {fmt(td.get('p99'))} / {fmt(td.get('max'))} "
      f"| {s.get('ticks_missed')} | {cpu:.0f} % | {int(peak) / 1024:.0f} MiB | {per_conn:.1f} KiB "
      f"| {r['bytes_per_bot_per_s'] / 1000:.2f} KB/s | {fmt(r['snapshot_interval_ms'].get('p99'))} ms "
      f"| {r['desyncs']} | {r['disconnects']} | {load} |")
EOF
)
        rows+=("$row")
        echo "$row" >&2
        PORT=$((PORT + 1))
    done
done

echo
echo "duration $DURATION (ramp-up $RAMP), 30 Hz, input rate 30/s, view cell $CELL; $(nproc) cores; $(uptime)"
echo
echo "| bots | R | cell | connected | tick p50 / p99 / max (ms) | ticks missed | server CPU | server RSS peak | RSS per conn | bytes per bot | snapshot interval p99 | desyncs | disconnects | load avg before |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for row in "${rows[@]}"; do echo "$row"; done
