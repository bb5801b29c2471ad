#!/usr/bin/env bash
# Does loading a new model version stall the requests being served? The release API serves a
# copy of the bundled model while traffic-gen sends a steady open-loop load (latency measured
# from the intended send time, so a stall shows in full). Each round runs the same load twice,
# back to back: once undisturbed, once while ten new versions are dropped into the model's folder
# (one every --every seconds, each written under a hidden name and renamed into place, as
# scripts/train_model.py does), each loaded, warmed up and swapped in while serving. Reports the
# p99 of both and their same-round ratio (median over rounds); checks that every reload happened
# and no request failed.
#
#   scripts/bench-reload.sh [--rate R] [--duration S] [--every S] [--rounds N] [--workers N]
#
# Exit status 1 when a request failed or a version was not loaded.
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=2000
DURATION=30
EVERY=2.5
ROUNDS=3
WORKERS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --every) EVERY="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --workers) WORKERS="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

cargo build --release -q -p inference-api -p traffic-gen --bins
work=$(mktemp -d)
api_pid=""
cleanup() { [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

folder="$work/models/breast-cancer"
mkdir -p "$folder"
cp models/breast-cancer/model.json models/breast-cancer/model.onnx models/breast-cancer/samples.csv "$folder/"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
APP_SERVER__PORT=$port APP_SERVER__WORKERS=$WORKERS APP_MODEL__REPOSITORY="$work/models" \
  APP_MODEL__POLL_INTERVAL_SECONDS=0.5 APP_LOG__ACCESS=off \
  target/release/inference-api >"$work/api.log" 2>&1 &
api_pid=$!
api="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$api/ready" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$api/ready" >/dev/null || { echo "the API did not become ready" >&2; cat "$work/api.log" >&2; exit 1; }

loads() {
  curl -fs "$api/metrics" | awk '/^inference_model_loads_total\{model="breast-cancer",outcome="loaded"/ { print $2 }'
}

# Writes version $1 into the model's folder the safe way.
drop_version() {
  local hidden="$folder/.$1.tmp"
  mkdir "$hidden"
  python3 - "$folder/model.json" "$hidden/model.json" "$1" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["version"] = sys.argv[3]
json.dump(doc, open(sys.argv[2], "w"))
PY
  cp "$folder/model.onnx" "$folder/samples.csv" "$hidden/"
  mv "$hidden" "$folder/$1"
}

# One load of $DURATION s at $RATE req/s; prints "<p99_ms> <errors> <achieved_rate>".
run_load() {
  RUST_LOG=warn target/release/traffic-gen run -t "$api" -s steady --seed 1 -r "$RATE" \
    -d "${DURATION}s" --bundle "$folder" --no-progress -o json >"$work/tg.json"
  python3 - "$work/tg.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f'{r["latency"]["p99_ms"]:.2f} {r["errors"] + r["unfinished"]} {r["achieved_rate"]:.0f}')
PY
}

echo "API $WORKERS workers; $RATE req/s for ${DURATION}s per run; 10 reloads every ${EVERY}s; $ROUNDS rounds"
pairs=()
fail=0
for round in $(seq "$ROUNDS"); do
  read -r quiet quiet_errors quiet_rate < <(run_load)
  before=$(loads)
  (
    sleep 1
    for i in $(seq 10); do
      drop_version "1.$round.$i"
      sleep "$EVERY"
    done
  ) &
  dropper=$!
  read -r busy busy_errors busy_rate < <(run_load)
  wait "$dropper"
  sleep 1
  reloads=$(( $(loads) - before ))
  echo "round $round: p99 without reloads ${quiet} ms ($quiet_rate req/s, $quiet_errors failed), with $reloads reloads ${busy} ms ($busy_rate req/s, $busy_errors failed)"
  if [ "$quiet_errors" != 0 ] || [ "$busy_errors" != 0 ] || [ "$reloads" != 10 ]; then fail=1; fi
  pairs+=("$quiet:$busy")
done

python3 - "${pairs[@]}" <<'PY'
import statistics, sys
rounds = [tuple(map(float, p.split(":"))) for p in sys.argv[1:]]
print()
print(f"p99 median: without reloads {statistics.median(q for q, _ in rounds):.2f} ms, "
      f"during 10 reloads {statistics.median(b for _, b in rounds):.2f} ms; "
      f"same-round ratio median {statistics.median(b / q for q, b in rounds):.2f}x")
PY
[ "$fail" = 0 ] || echo "FAIL: a request failed or a reload did not happen" >&2
exit "$fail"
