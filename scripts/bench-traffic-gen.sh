#!/usr/bin/env bash
# Is traffic-gen ever the bottleneck? Two measurements in one run, against the same endpoint:
#
#   1. Fixed rate (the check): traffic-gen at --rate req/s; achieved rate within 2% of it, CPU
#      (user + system, from /proc/<pid>/stat) under half a core, no errors.
#   2. Maximum rate (reported, no floor): traffic-gen with an unreachable target rate (every
#      send waits for one of --connections slots) vs wrk with the same number of connections,
#      same body, same endpoint. Each round runs wrk then traffic-gen back to back; the median
#      over rounds of the same-round ratio is reported (this VM's speed drifts by tens of
#      percent over minutes, so runs far apart in time do not compare). traffic-gen sends every
#      request through reqwest, which spends more CPU per request than wrk; the share says how
#      much of wrk's rate one run reaches.
#
#   scripts/bench-traffic-gen.sh [--target URL] [--connections N] [--duration S] [--rate R]
#                                [--rounds N] [--threads N]
#
# Without --target it starts the bare `hello_server` example (one actix worker) on loopback.
# --target can point at the real inference API instead (POST <target>/predict).
# --threads sets both wrk's threads and traffic-gen's tokio workers (default 1).
# Exit status 1 when the fixed-rate check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=""
CONNECTIONS=64
DURATION=8
RATE=5000
ROUNDS=3
THREADS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --target) TARGET="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

cargo build --release -q -p traffic-gen --bin traffic-gen --example hello_server
TG=target/release/traffic-gen
work=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [ -z "$TARGET" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  target/release/examples/hello_server "127.0.0.1:$port" 1 &
  server_pid=$!
  TARGET="http://127.0.0.1:$port"
  for _ in $(seq 50); do curl -fs "$TARGET/health" >/dev/null 2>&1 && break; sleep 0.1; done
fi
TARGET="${TARGET%/}"

# wrk sends the first sample row as a named-feature object, the larger of the two single-row
# forms traffic-gen's `steady` alternates between.
python3 - "$work/post.lua" <<'PY'
import csv, json, sys
row = next(csv.DictReader(open("models/breast-cancer/samples.csv")))
row.pop("label")
body = json.dumps({"features": {k: float(v) for k, v in row.items()}}, separators=(",", ":"))
open(sys.argv[1], "w").write(
    'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    f"wrk.body = {json.dumps(body)}\n")
PY

# Runs traffic-gen with $@, prints "<achieved_rate> <cpu_seconds> <wall_seconds> <errors>".
run_tg() {
  local start end pid ticks
  ticks=$(getconf CLK_TCK)
  start=$(date +%s.%N)
  TOKIO_WORKER_THREADS=$THREADS RUST_LOG=warn "$TG" run -t "$TARGET" -s steady --seed 1 \
    --no-progress -o json "$@" >"$work/tg.json" &
  pid=$!
  # Sample the process's CPU time until it exits (the last sample is at most 50 ms old).
  local cpu=0
  while kill -0 "$pid" 2>/dev/null; do
    if [ -r "/proc/$pid/stat" ]; then
      cpu=$(awk -v t="$ticks" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$pid/stat" 2>/dev/null || echo "$cpu")
    fi
    sleep 0.05
  done
  wait "$pid"
  end=$(date +%s.%N)
  python3 - "$work/tg.json" "$cpu" "$start" "$end" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f'{r["achieved_rate"]:.0f} {sys.argv[2]} {float(sys.argv[4]) - float(sys.argv[3]):.2f} {r["errors"]}')
PY
}

run_wrk() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$work/post.lua" "$TARGET/predict" \
    | awk '/Requests\/sec/ { printf "%.0f\n", $2 }'
}

echo "target $TARGET, $CONNECTIONS connections, ${DURATION}s per round, $ROUNDS rounds, $THREADS thread(s)"
pairs=()
for round in $(seq "$ROUNDS"); do
  w=$(run_wrk)
  read -r t _cpu _wall errors < <(run_tg -r 10000000 -d "${DURATION}s" -c "$CONNECTIONS")
  echo "round $round: wrk $w req/s, traffic-gen $t req/s = $(( 100 * t / w ))% ($errors errors)"
  pairs+=("$w:$t")
done

read -r fixed cpu wall errors < <(run_tg -r "$RATE" -d "${DURATION}s" -c "$CONNECTIONS")

fail=0
python3 - "$RATE" "$fixed" "$cpu" "$wall" "$errors" "${pairs[@]}" <<'PY' || fail=1
import statistics, sys
rate, fixed, cpu, wall, errors = map(float, sys.argv[1:6])
rounds = [tuple(map(float, p.split(":"))) for p in sys.argv[6:]]
ratio = statistics.median(tg / wrk for wrk, tg in rounds)
wrk = statistics.median(w for w, _ in rounds)
tg = statistics.median(t for _, t in rounds)
deviation = abs(fixed - rate) / rate
cores = cpu / wall
ok = deviation <= 0.02 and cores < 0.5 and errors == 0
print()
print(f"fixed rate: target {rate:.0f} req/s, achieved {fixed:.0f} req/s ({100 * deviation:.2f}% off, need <= 2%), "
      f"CPU {cpu:.2f} s over {wall:.2f} s = {cores:.2f} cores (need < 0.5), {errors:.0f} errors  {'PASS' if ok else 'FAIL'}")
print(f"max rate:   median same-round ratio {100 * ratio:.1f}% of wrk (reported, no floor; medians wrk {wrk:.0f}, "
      f"traffic-gen {tg:.0f} req/s)")
sys.exit(0 if ok else 1)
PY
exit "$fail"
