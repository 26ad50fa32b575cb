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
#          DURATION=60s            per run, ramp-up included (seconds, with "s")
#          RAMP=10s                ramp-up (bots connect evenly over it; seconds, with "s")
#          SKIP="2000/0"           size/radius pairs not to run (too big for the box)
#          OUT=target/load         where reports and logs go
#          NO_BUILD=1              do not (re)build the release binaries
#          FLOOR=1                 after each run, run the transport floor (0 = skip)
#          SERVER=path             the server binary (default target/release/ticksync-server)
#          VERIFY=N                only the first N bots decode, verify and predict (bot
#                                  --verify); the others count frames and bytes (default: all)
#
# The floor (benches/ws_floor, `ws-floor`): a bare tokio-tungstenite server and
# clients moving the same traffic as the run just measured, with no game logic:
# the same number of clients, one message per client per tick of the run's mean
# frame size, the same input rate and mean input size, a ping a second. Server
# CPU is reported as user and system time, each as a ratio to the floor's.
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
FLOOR=${FLOOR:-1}
VERIFY=${VERIFY:-}
# Extra flags for the server and the bots (e.g. rooms: SERVER_ARGS="--room-kind
# squad:capacity=8" BOT_ARGS="--matchmake --kind squad"), split on spaces.
SERVER_ARGS=${SERVER_ARGS:-}
BOT_ARGS=${BOT_ARGS:-}
mkdir -p "$OUT"

if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -p ticksync-server -p ticksync-bot -p ticksync-ws-floor >&2
fi
SERVER=${SERVER:-target/release/ticksync-server}
BOT=target/release/ticksync-bot
WS_FLOOR=target/release/ws-floor
HZ=$(getconf CLK_TCK)

# utime and stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
# A counter from a Prometheus text exposition.
counter() { awk -v m="$1" '$1 == m {print $2}' "$2"; }

# Runs the floor for $1 clients with tick messages of $2 bytes and $4 inputs a
# second of $3 bytes on port $5; prints the floor server's "utime0 stime0 utime1
# stime1 t0 t1 connected".
run_floor() {
    local clients=$1 frame=$2 input=$3 rate=$4 port=$5 fpid c0 c1 t0 t1 out
    local secs=${DURATION%s}
    "$WS_FLOOR" server --bind "127.0.0.1:$port" --frame-bytes "$frame" \
        --exit-after "$((secs + 60))s" >/dev/null 2>&1 &
    fpid=$!
    sleep 0.5
    c0=$(cpu_ticks "$fpid")
    t0=$(date +%s.%N)
    out=$("$WS_FLOOR" client --addr "127.0.0.1:$port" --clients "$clients" \
        --duration "$DURATION" --ramp-up "$RAMP" --input-rate "$rate" --input-bytes "$input" \
        --frame-bytes "$frame" 2>&1 || true)
    t1=$(date +%s.%N)
    c1=$(cpu_ticks "$fpid")
    kill -TERM "$fpid" 2>/dev/null || true
    wait "$fpid" 2>/dev/null || true
    echo "$out" >&2
    local connected
    connected=$(echo "$out" | sed -n 's/.*connected=\([0-9]*\).*/\1/p')
    echo "${c0% *} ${c0#* } ${c1% *} ${c1#* } $t0 $t1 ${connected:-0}"
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

rows=()
for radius in $RADII; do
    for bots in $SIZES; do
        case " $SKIP " in *" $bots/$radius "*)
            rows+=("| $bots | $radius | $CELL | not run (SKIP: does not fit this machine) ||||||||||||||")
            continue ;;
        esac
        tag="b${bots}_r${radius}_c${CELL}_${DURATION}${TAG:+_$TAG}"
        log="$OUT/server_$tag.log"
        json="$OUT/bots_$tag.json"
        "$SERVER" --bind "127.0.0.1:$PORT" --view-radius "$radius" --view-cell "$CELL" \
            --max-players $((bots + 100)) --max-connections $((bots + 100)) \
            --max-connections-per-ip $((bots + 100)) $SERVER_ARGS >"$log" 2>&1 &
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
            --ramp-up "$RAMP" --input-rate 30 --json "$json" --no-progress $BOT_ARGS \
            ${VERIFY:+--verify "$VERIFY"} \
            --metrics-url "http://127.0.0.1:$PORT/metrics" >"$OUT/bots_$tag.txt" 2>&1 || true
        t1=$(date +%s.%N)
        cpu1=$(cpu_ticks "$spid")
        curl -sf "http://127.0.0.1:$PORT/metrics" >"$OUT/metrics_$tag.txt" || true
        kill -TERM "$spid"
        wait "$spid" || true
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        rss_peak=$(cat "$OUT/rss_$tag" 2>/dev/null || echo 0)
        m="$OUT/metrics_$tag.txt"
        # The run's mean message sizes, for the floor.
        frame=$(python3 -c 'import sys; b, n = (float(x or 0) for x in sys.argv[1:]); print(round(b / n) if n else 170)' \
            "$(counter ticksync_bytes_sent_total "$m")" "$(counter ticksync_snapshots_sent_total "$m")")
        input=$(python3 -c 'import sys; b, n = (float(x or 0) for x in sys.argv[1:]); print(round(b / n) if n else 9)' \
            "$(counter ticksync_bytes_received_total "$m")" "$(counter ticksync_messages_received_total "$m")")
        # Inputs per bot-second the server really received (bots that fall
        # behind send fewer), less the one ping a second; ramp-up: half the time.
        rate=$(python3 -c 'import sys; n, b, d, r = (float(x or 0) for x in sys.argv[1:]); print(max(1, round(n / max(b * (d - r / 2), 1) - 1)))' \
            "$(counter ticksync_messages_received_total "$m")" "$bots" "${DURATION%s}" "${RAMP%s}")
        floor="- - - - - - 0"
        if [ "$FLOOR" != 0 ]; then
            PORT=$((PORT + 1))
            floor=$(run_floor "$bots" "$frame" "$input" "$rate" "$PORT")
        fi
        row=$(python3 - "$json" "$bots" "$radius" "$CELL" "$cpu0" "$cpu1" "$t0" "$t1" "$HZ" \
            "$rss0" "$rss_peak" "$load_before" "$frame" "$input" "$rate" "$floor" <<'EOF'
import json, sys
(path, bots, radius, cell, cpu0, cpu1, t0, t1, hz, rss0, peak, load, frame, inp, rate, floor) = sys.argv[1:]
try:
    r = json.load(open(path))
except Exception as e:
    print(f"| {bots} | {radius} | {cell} | no report ({e}) ||||||||||||||")
    sys.exit()
s = r["server"]
td = s.get("tick_duration_ms") or {}
fmt = lambda v: "?" if v is None else f"{v:.2f}"
conn = max(r["bots_connected"], 1)
hz = float(hz)
def usage(c0, c1, t0, t1):
    """(user %, system %) of one core over the interval."""
    (u0, s0), (u1, s1) = (map(float, c0.split()), map(float, c1.split()))
    wall = float(t1) - float(t0)
    return (u1 - u0) / hz / wall * 100, (s1 - s0) / hz / wall * 100
user, system = usage(cpu0, cpu1, t0, t1)
per_conn = (int(peak) - int(rss0)) / conn
f = floor.split()
if f[0] == "-":
    floor_cols = "— | —"
else:
    fu, fs = usage(f"{f[0]} {f[1]}", f"{f[2]} {f[3]}", f[4], f[5])
    ratio = lambda a, b: f"{a / b:.2f}" if b > 0 else "?"
    floor_cols = (f"{fu:.0f} / {fs:.0f} % ({f[6]} conn, {frame} B / {inp} B × {rate}/s) "
                  f"| {ratio(user, fu)} / {ratio(system, fs)} / {ratio(user + system, fu + fs)}")
l = r.get("listing") or {}
listing = (f"{l.get('changed_per_delta', 0):.1f} / {l.get('corrected_per_delta', 0):.1f} "
           f"({100 * l.get('corrected_share_of_entities', 0):.2f} %)")
print(f"| {bots} | {radius} | {cell} | {r['bots_connected']} ({r.get('bots_verifying', '?')} verify) "
      f"| {fmt(td.get('p50'))} / {fmt(td.get('p99'))} / {fmt(td.get('max'))} "
      f"| {s.get('ticks_missed')} | {user:.0f} / {system:.0f} % | {floor_cols} "
      f"| {int(peak) / 1024:.0f} MiB | {per_conn:.1f} KiB "
      f"| {r['bytes_per_bot_per_s'] / 1000:.2f} KB/s | {fmt(r['snapshot_interval_ms'].get('p99'))} ms "
      f"| {listing} | {r['desyncs']} | {r['disconnects']} | {load} |")
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
echo "| bots | R | cell | connected | tick p50 / p99 / max (ms) | ticks missed | server CPU user / sys | floor CPU user / sys (frame / input size) | ratio to floor user / sys / total | server RSS peak | RSS per conn | bytes per bot | snapshot interval p99 | changed / corrected per delta (corrected % of entities: jitter) | desyncs | disconnects | load avg before |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for row in "${rows[@]}"; do echo "$row"; done
