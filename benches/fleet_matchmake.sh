#!/usr/bin/env bash
# Matchmakes per second and latency percentiles through one fleet member and
# through nginx in front of three (docs/SCALING.md, "Measured"), then seat
# claims: BOTS ticksync-bot players matchmake through nginx and join, and the
# members' debug log says how long each claim queued on its member's write
# lock (behind heartbeats, rooms opening, other claims) and how long its Redis
# script took. Starts its own redis-server, members and nginx on 127.0.0.1,
# stops them at the end.
#
#   benches/fleet_matchmake.sh [BINARY] [REQUESTS] [CONCURRENCY] [BOTS]
#
# BINARY defaults to target/release/ticksync-server (ticksync-bot is taken
# from the same directory). The request phases use ApacheBench (`ab`, Debian's
# apache2-utils): one process keeps CONCURRENCY requests in flight, each a new
# connection with one `POST /matchmake`, as a client's matchmake is; the
# figures are ab's requests per second and its percentiles of the time per
# request. (A curl process per request, used before, measured process
# start-up more than the fleet on 2 cores.)
set -euo pipefail
BIN=${1:-target/release/ticksync-server}
N=${2:-2000}
C=${3:-16}
BOTS=${4:-300}
BOT_BIN=$(dirname "$BIN")/ticksync-bot
DIR=$(mktemp -d /tmp/ticksync-fleet-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RP=$(port); NP=$(port)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" --loglevel warning & PIDS+=($!)
sleep 0.5
MEMBERS=""
for i in 1 2 3; do
  P=$(port)
  RUST_LOG=info,ticksync_server::fleet=debug,ticksync_server::net::matchmake=debug "$BIN" --bind 127.0.0.1:"$P" --redis redis://127.0.0.1:"$RP"/ --member-id m$i \
    --public-url http://127.0.0.1:"$NP"/m/m$i --fleet-secret bench-fleet-secret-0123 \
    --room-capacity 64 --max-players 100000 --max-rooms 10000 >"$DIR/m$i.log" 2>&1 & PIDS+=($!)
  eval "P$i=$P"
  MEMBERS="$MEMBERS m$i:$P"
done
{
  for m in $MEMBERS; do echo "upstream ticksync_member_${m%%:*} { server 127.0.0.1:${m##*:}; }"; done
  echo 'map $ticksync_member $ticksync_upstream { default "";'
  for m in $MEMBERS; do echo "  ${m%%:*} ticksync_member_${m%%:*};"; done
  echo '}'
  echo 'upstream ticksync_any {'; for m in $MEMBERS; do echo "  server 127.0.0.1:${m##*:};"; done; echo '}'
} > "$DIR/members.conf"
sed "s/listen 127.0.0.1:8080;/listen 127.0.0.1:$NP;/" deploy/nginx/ticksync.conf > "$DIR/ticksync.conf"
mkdir -p "$DIR/logs"
cat > "$DIR/nginx.conf" <<CONF
daemon off; worker_processes 1; pid $DIR/nginx.pid; error_log $DIR/logs/error.log warn;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
events { worker_connections 4096; }
http { access_log off; include $DIR/members.conf; include $DIR/ticksync.conf; }
CONF
nginx -p "$DIR" -c "$DIR/nginx.conf" & PIDS+=($!)
sleep 2
command -v ab >/dev/null || { echo "ab not found: apt-get install apache2-utils" >&2; exit 1; }
echo '{}' > "$DIR/body.json"
run() { # URL label
  ab -q -l -n "$N" -c "$C" -p "$DIR/body.json" -T application/json -e "$DIR/$2.csv" \
    "$1/matchmake" > "$DIR/$2.txt" 2>&1 || { cat "$DIR/$2.txt"; return 1; }
  python3 - "$DIR/$2.txt" "$DIR/$2.csv" "$N" "$2" <<'PY'
import csv, re, sys
out = open(sys.argv[1]).read()
field = lambda name: re.search(name + r":\s+([0-9.]+)", out)
failed = int(field("Failed requests")[1])
non2xx = int(field("Non-2xx responses")[1]) if field("Non-2xx responses") else 0
pct = {int(float(p)): float(ms) for p, ms in list(csv.reader(open(sys.argv[2])))[1:]}
ok = int(sys.argv[3]) - failed - non2xx
print(f"{sys.argv[4]}: {ok}/{sys.argv[3]} ok, {float(field('Requests per second')[1]):.0f} matchmakes/s, "
      f"p50 {pct[50]:.1f} ms, p99 {pct[99]:.1f} ms, max {pct[100]:.1f} ms; "
      f"non-2xx {non2xx}, failed {failed}" + (f" ({m[0]})" if (m := re.search(r"\(Connect.*\)", out)) else ""))
PY
  refusals
}
# The members' refusals since they started (status, outcome, reason), counted.
refusals() {
  python3 - "$DIR" <<'PY'
import collections, glob, re, sys
seen = collections.Counter()
for f in glob.glob(sys.argv[1] + "/m*.log"):
    for line in open(f):
        if "matchmake refused" in line:
            m = re.search(r"status=(\d+) outcome=(\S+) text=(.*)$", line)
            seen[m.groups() if m else (line.strip()[-80:],)] += 1
for k, n in seen.most_common():
    print(f"  refused so far {n}x: {' '.join(k)}")
PY
}
claims() {
  "$BOT_BIN" --url "ws://127.0.0.1:$NP/ws" --matchmake --bots "$BOTS" --ramp-up 5s --duration 12s \
    --no-progress --json "$DIR/bots.json" > "$DIR/bots.txt" 2>&1 || { tail -20 "$DIR/bots.txt"; return 1; }
  python3 - "$DIR" "$BOTS" <<'PY'
import glob, json, re, sys
d, bots = sys.argv[1], sys.argv[2]
waited, took, beats = [], [], []
for f in glob.glob(d + "/m*.log"):
    for line in open(f):
        if "fleet::seats: seat claim " in line:
            waited.append(int(re.search(r"waited_us=(\d+)", line)[1]))
            took.append(int(re.search(r"took_us=(\d+)", line)[1]))
        elif "fleet::membership: heartbeat took_us=" in line:
            beats.append(int(re.search(r"took_us=(\d+)", line)[1]))
def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))] / 1000 if v else float("nan")
r = json.load(open(d + "/bots.json"))
print(f"claims ({bots} bots through nginx): {len(waited)} claims; lock wait p50 {q(waited,.5):.2f} ms, "
      f"p99 {q(waited,.99):.2f} ms, max {q(waited,1):.2f} ms; claim script p50 {q(took,.5):.2f} ms, "
      f"p99 {q(took,.99):.2f} ms; heartbeat p50 {q(beats,.5):.2f} ms, p99 {q(beats,.99):.2f} ms, "
      f"max {q(beats,1):.2f} ms ({len(beats)} heartbeats); bots connected {r['bots_connected']}/{r['bots_requested']}, "
      f"desyncs {r['desyncs']}, matchmake p99 {r['matchmake_ms']['p99']} ms")
PY
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
run "http://127.0.0.1:$P1" one-member
run "http://127.0.0.1:$NP" three-members-via-nginx
claims
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
