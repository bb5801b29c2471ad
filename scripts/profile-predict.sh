#!/usr/bin/env bash
# Where a /predict request's instructions go: the release API under callgrind, driven by wrk.
#
#   scripts/profile-predict.sh [--rows 1|100] [--v2] [--connections N] [--seconds S] [--out FILE] [--bin PATH]
#
# --v2 sends the same rows to the V2 inference route instead (POST /v2/models/breast-cancer/infer):
# one row as a JSON tensor, 100 rows as binary tensors, the bodies scripts/bench.sh sends.
# --bin profiles an API binary built elsewhere (an older commit, for an A/B) instead of building
# this checkout's.
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
BIN=
V2=false
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS="$2"; shift 2; [[ "$ROWS" =~ ^(1|100)$ ]] || { echo "--rows is 1 or 100" >&2; exit 2; } ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --seconds) SECONDS_RUN="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --bin) BIN="$2"; shift 2 ;;
    --v2) V2=true; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in valgrind callgrind_control callgrind_annotate wrk; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install valgrind wrk" >&2; exit 1; }
done
scripts/fetch-onnxruntime.sh >/dev/null
if [ -z "$BIN" ]; then
  cargo build --release -q -p inference-api --bin inference-api
  BIN=target/release/inference-api
fi

work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# free_port, wait_http, write_predict_bodies, write_v2_bodies (the same bodies as scripts/bench.sh)
source scripts/lib/bench-common.sh
write_predict_bodies "$work"
write_v2_bodies "$work"
path=/predict
body="$work/single.lua"
[ "$ROWS" = 100 ] && body="$work/batch.lua"
if $V2; then
  path=/v2/models/breast-cancer/infer
  body="$work/v2-single.lua"
  [ "$ROWS" = 100 ] && body="$work/v2-batch-binary.lua"
fi

port=$(free_port)
APP_SERVER__PORT=$port APP_SERVER__WORKERS=2 \
  valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BIN" \
  > "$work/api.log" 2> "$work/valgrind.log" &
pid=$!
WAIT_HTTP_SECONDS=60 wait_http "http://127.0.0.1:$port/ready" || { tail "$work/valgrind.log" >&2; exit 1; }

url="http://127.0.0.1:$port$path"
wrk -t1 -c"$CONNECTIONS" -d3s -s "$body" "$url" >/dev/null
callgrind_control -z "$pid" >/dev/null 2>&1
lines_at_zero=$(grep -c 'request completed' "$work/api.log" || true)
wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_RUN}s" -s "$body" "$url" > "$work/wrk.txt"
answered=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
# Let the requests wrk left in flight finish before the dump: the API still parses and answers them.
sleep 2
callgrind_control -d "$pid" >/dev/null 2>&1
# The dump after zeroing is the file with the highest part number.
dump=$(ls "$OUT".* | sort -t. -k2 -n | tail -1)
instructions=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
# Requests the API handled in the profile: its access lines ("request completed", one per
# request; log.access must not be `off`) between the zeroing and the dump. wrk's count leaves
# out the requests still in flight when it stops (up to --connections of them: 9% of a 10 s run
# of 100-row requests under callgrind).
completed() { grep -c 'request completed' "$work/api.log" || true; }
requests=$(( $(completed) - lines_at_zero ))
if [ "$requests" -le 0 ]; then
  echo "(no access lines: counting the requests wrk saw answered)" >&2
  requests=$answered
fi
echo "$ROWS-row $path requests: $requests handled in the profile ($answered answered to wrk in ${SECONDS_RUN} s) under callgrind"
echo "user-space instructions per request: $((instructions / requests))"
echo "profile: $dump"
