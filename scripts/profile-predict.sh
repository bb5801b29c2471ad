#!/usr/bin/env bash
# Where a /predict request's instructions go: the release API under callgrind, driven by wrk.
#
#   scripts/profile-predict.sh [--rows 1|100] [--connections N] [--seconds S] [--out FILE]
#
# Instruction counts do not drift with this VM's speed the way req/s does, so this is the A/B
# measure for code changes. Builds release, starts the API (2 workers) under valgrind's callgrind,
# warms up for 3 s, zeroes the counters, drives it for S seconds (default 10) and prints user-space
# instructions per request. Read the profile with
#   callgrind_annotate --inclusive=yes FILE.1 | less
# Under valgrind the threads run one at a time, so rows per ONNX call differ from a real run.
# Do not scrape /metrics of the profiled API: the process collector's auxv read trips a valgrind
# assertion.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=1
CONNECTIONS=32
SECONDS_RUN=10
OUT=$(mktemp -d)/callgrind.out
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --seconds) SECONDS_RUN="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in valgrind callgrind_control callgrind_annotate wrk; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install valgrind wrk" >&2; exit 1; }
done
scripts/fetch-onnxruntime.sh >/dev/null
cargo build --release -q -p inference-api --bin inference-api

work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

python3 - "$work/body.lua" "$ROWS" <<'PY'
import csv, json, sys
rows = [[float(v) for v in r[:-1]] for r in csv.reader(list(open("models/breast-cancer/samples.csv"))[1:])]
n = int(sys.argv[2])
body = json.dumps({"features": rows[0]}) if n == 1 else json.dumps({"instances": (rows * (n // len(rows) + 1))[:n]})
with open(sys.argv[1], "w") as f:
    f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
    f.write("wrk.body = " + json.dumps(body) + "\n")
PY

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
APP_SERVER__PORT=$port APP_SERVER__WORKERS=2 \
  valgrind --tool=callgrind --callgrind-out-file="$OUT" target/release/inference-api \
  > "$work/api.log" 2> "$work/valgrind.log" &
pid=$!
for _ in $(seq 1 600); do curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$port/ready" >/dev/null || { echo "the API did not get ready:" >&2; tail "$work/valgrind.log" >&2; exit 1; }

url="http://127.0.0.1:$port/predict"
wrk -t1 -c"$CONNECTIONS" -d3s -s "$work/body.lua" "$url" >/dev/null
callgrind_control -z "$pid" >/dev/null 2>&1
wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_RUN}s" -s "$work/body.lua" "$url" > "$work/wrk.txt"
callgrind_control -d "$pid" >/dev/null 2>&1
requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
# The dump after zeroing is the file with the highest part number.
dump=$(ls "$OUT".* | sort -t. -k2 -n | tail -1)
instructions=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "$ROWS-row requests: $requests in ${SECONDS_RUN} s under callgrind"
echo "user-space instructions per request: $((instructions / requests))"
echo "profile: $dump"
