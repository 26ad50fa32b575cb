#!/usr/bin/env bash
# What TLS costs the server: the same bot load over ws:// and over wss://, back
# to back in one invocation, on 127.0.0.1 only; every run stops by itself.
# Prints one markdown table: per transport, server CPU per connection for the
# join (TCP accept, TLS handshake if any, WebSocket upgrade, Hello/Welcome, the
# first full snapshot), server CPU per message once everyone plays, and server
# RSS per connection; then the wss:// figures as ratios to ws://.
#
# How the phases are separated (server CPU from /proc/PID/stat, messages from
# the server's own counters):
#   join:   CPU from the first connection to the end of the ramp-up, minus what
#           the bots already connected cost meanwhile (the steady per-bot rate
#           below times the bot-seconds of the ramp, N x RAMP / 2), divided by N;
#   steady: CPU over [ramp-up + 2 s, end - 1 s] divided by the messages the
#           server sent and received in that window (snapshots + client messages);
#   memory: RSS in the steady window minus RSS before the first bot, over N.
# Every bot does a full TLS handshake (the bot does no session resumption).
#
# Usage:   benches/tls_cost.sh
# Env:     BOTS=500           bots per run
#          KEYS="ec rsa"      server key types: ec = ECDSA P-256, rsa = RSA 2048
#          DURATION=40        seconds per run, ramp-up included
#          RAMP=10            ramp-up seconds
#          OUT=target/tls     certificates, reports and logs
#          NO_BUILD=1         do not (re)build the release binaries
# Needs: openssl (test certificates), curl, python3.
set -euo pipefail

cd "$(dirname "$0")/.."
BOTS=${BOTS:-500}
KEYS=${KEYS:-"ec rsa"}
DURATION=${DURATION:-40}
RAMP=${RAMP:-10}
OUT=${OUT:-target/tls}
PORT=${PORT:-7961}
mkdir -p "$OUT"

if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -p ticksync-server -p ticksync-bot >&2
fi
SERVER=target/release/ticksync-server
BOT=target/release/ticksync-bot
HZ=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# Snapshots sent + client messages received, from the server's /metrics.
messages() {
    curl -sf "${CURL_TLS[@]}" "$1/metrics" |
        awk '$1 == "ticksync_snapshots_sent_total" || $1 == "ticksync_messages_received_total" {n += $2} END {print n + 0}'
}

# A test CA and a server certificate for 127.0.0.1 with a key of type $1.
make_cert() {
    local dir=$OUT/$1
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=ticksync-bench-ca -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    case $1 in
        ec) openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -subj /CN=127.0.0.1 -keyout "$dir/key.pem" -out "$dir/req.pem" 2>/dev/null ;;
        rsa) openssl req -newkey rsa:2048 -nodes \
                -subj /CN=127.0.0.1 -keyout "$dir/key.pem" -out "$dir/req.pem" 2>/dev/null ;;
    esac
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/san.ext"
    openssl x509 -req -in "$dir/req.pem" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 2 -extfile "$dir/san.ext" -out "$dir/cert.pem" 2>/dev/null
}

# One run: $1 = label, then the server's extra flags after "--", then the bot's.
run() {
    local label=$1 scheme=$2 tag=$OUT/$1
    shift 2
    local server_args=() bot_args=()
    while [ "$1" != "--" ]; do server_args+=("$1"); shift; done
    shift
    bot_args=("$@")
    local base="$scheme://127.0.0.1:$PORT"
    "$SERVER" --bind "127.0.0.1:$PORT" --view-radius 100 \
        --max-players $((BOTS + 100)) --max-connections $((BOTS + 100)) \
        "${server_args[@]}" >"$tag.server.log" 2>&1 &
    local spid=$!
    for _ in $(seq 100); do
        curl -sf "${CURL_TLS[@]}" "$base/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    local rss0 cpu0 cpu_ramp cpu_a cpu_b msg_a msg_b rss_a t0 t_ramp t_a t_b load
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    rss0=$(rss_kib "$spid")
    cpu0=$(cpu_ticks "$spid")
    t0=$(date +%s.%N)
    "$BOT" --url "${base/http/ws}/ws" --bots "$BOTS" --duration "${DURATION}s" \
        --ramp-up "${RAMP}s" --input-rate 30 --no-progress --json "$tag.bots.json" \
        "${bot_args[@]}" >"$tag.bots.txt" 2>&1 &
    local bpid=$!
    sleep "$RAMP"
    cpu_ramp=$(cpu_ticks "$spid"); t_ramp=$(date +%s.%N)
    sleep 2
    cpu_a=$(cpu_ticks "$spid"); msg_a=$(messages "$base"); rss_a=$(rss_kib "$spid"); t_a=$(date +%s.%N)
    sleep $((DURATION - RAMP - 3))
    cpu_b=$(cpu_ticks "$spid"); msg_b=$(messages "$base"); t_b=$(date +%s.%N)
    wait "$bpid" || true
    kill -TERM "$spid"; wait "$spid" || true
    python3 - "$label" "$tag.bots.json" "$BOTS" "$HZ" "$RAMP" "$cpu0" "$cpu_ramp" "$cpu_a" \
        "$cpu_b" "$t0" "$t_ramp" "$t_a" "$t_b" "$msg_a" "$msg_b" "$rss0" "$rss_a" "$load" \
        >>"$OUT/rows.tsv" <<'EOF'
import json, sys
(label, path, n, hz, ramp, cpu0, cpu_ramp, cpu_a, cpu_b, t0, t_ramp, t_a, t_b,
 msg_a, msg_b, rss0, rss_a, load) = sys.argv[1:]
n, hz = int(n), float(hz)
r = json.load(open(path))
steady_cpu_s = (float(cpu_b) - float(cpu_a)) / hz
steady_s = float(t_b) - float(t_a)
per_bot_s = steady_cpu_s / steady_s / n                 # CPU s per bot per s
ramp_cpu_s = (float(cpu_ramp) - float(cpu0)) / hz
ramp_s = float(t_ramp) - float(t0)
join_us = (ramp_cpu_s - per_bot_s * n * ramp_s / 2) / n * 1e6
msg_us = steady_cpu_s / max(float(msg_b) - float(msg_a), 1) * 1e6
rss_kib = (int(rss_a) - int(rss0)) / n
print("\t".join(map(str, [label, r["bots_connected"], r["desyncs"], r.get("tls", "?"),
      f"{join_us:.0f}", f"{msg_us:.2f}", f"{rss_kib:.1f}",
      f"{steady_cpu_s / steady_s * 100:.0f}", load])))
EOF
    PORT=$((PORT + 1))
}

: >"$OUT/rows.tsv"
CURL_TLS=()
run ws http -- 
for key in $KEYS; do
    make_cert "$key"
    CURL_TLS=(--cacert "$OUT/$key/ca.pem")
    run "wss-$key" https --tls-cert "$OUT/$key/cert.pem" --tls-key "$OUT/$key/key.pem" \
        -- --ca-cert "$OUT/$key/ca.pem"
done

echo
echo "$BOTS bots, ${DURATION}s runs (ramp-up ${RAMP}s), 30 Hz, 30 inputs/s, view radius 100; $(nproc) cores; $(uptime)"
echo
python3 - "$OUT/rows.tsv" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print("| transport | connected | desyncs | report tls | server CPU per join | server CPU per message | server RSS per connection | server CPU (steady) | load avg before |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} µs | {r[5]} µs | {r[6]} KiB | {r[7]} % | {r[8]} |")
base = rows[0]
print()
print("| transport | join CPU vs ws:// | CPU per message vs ws:// | RSS per connection vs ws:// |")
print("|---|---|---|---|")
for r in rows[1:]:
    ratio = lambda i: f"{float(r[i]) / float(base[i]):.2f}x (+{float(r[i]) - float(base[i]):.1f})"
    print(f"| {r[0]} | {ratio(4)} µs | {ratio(5)} µs | {ratio(6)} KiB |")
EOF
