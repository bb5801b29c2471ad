#!/usr/bin/env bash
# Throughput of the inference API against the HTTP floor on this machine, in one run.
#
#   scripts/bench.sh [--duration SECONDS] [--connections N] [--rounds N] [--access-log]
#
# Builds release, starts a bare actix-web "hello" handler (the floor) and the API with each ONNX
# session-sharing design (per_worker, shared), with drift tracking off and with coalescing off
# (every request its own ONNX call), then drives them with
# wrk (same machine, loopback) in rounds: every round measures each server once, back to back,
# so the floor and the predictions it is compared with are seconds apart. This VM's speed drifts
# by tens of percent over minutes; ratios within a round are what stays comparable. Prints
# req/s and p50/p99 per run, then the median over rounds of each ratio.
# The API logs one JSON line per request to a file, as it would in production.
#
# Every round also measures ONNX Runtime alone (the `ort_alone` example: one runner thread per
# core, each with its own session built as the API builds it, looping over 100-row batches of the
# rows the 100-row requests send, for the same duration) and prints the 100-row /predict rows/s
# as a share of it, per round and as the median of those same-round shares. When the API answers
# the V2 inference route (POST /v2/models/breast-cancer/infer), the rounds also measure a 100-row
# V2 request with binary tensors (against ONNX Runtime alone) and a single-row V2 JSON request
# (against single-row /predict). For the 100-row /predict runs it also splits the CPU time per
# request into the API's user and system time and wrk's, and sets it against ONNX Runtime alone's
# CPU time per 100 rows: other processes on the machine shift rates, less so CPU times.
#
# --access-log measures instead what the access log costs: the API with log.access all, errors
# and off (single-row /predict, all answered 200, so `errors` writes no line; the only error
# line is a 503 from polling /ready before the model is loaded), each measured once per round in
# an order that rotates every round. Prints per round and as the median over rounds the cost per
# request of `all` and `errors` over `off`: the 1/req/s difference in microseconds, and the
# server's CPU time per request (all its threads, the log writer's too) minus that of `off`.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=5
CONNECTIONS=32
WORKERS=2
ROUNDS=3
ACCESS_LOG=false
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --access-log) ACCESS_LOG=true; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
scripts/fetch-onnxruntime.sh >/dev/null

cargo build --release -q -p inference-api --bin inference-api --example hello --example ort_alone
BIN=target/release/inference-api
HELLO=target/release/examples/hello
ORT_ALONE=target/release/examples/ort_alone
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# free_port, wait_http, write_predict_bodies, write_v2_bodies
source scripts/lib/bench-common.sh

write_predict_bodies "$work"
write_v2_bodies "$work"
printf 'wrk.method = "POST"\n' > "$work/hello.lua"

# cpu_ticks PID: user + system CPU time of the process so far, in clock ticks
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# cpu_split PID: "user system" CPU time of the process so far, in clock ticks
cpu_split() { awk '{print $14, $15}' "/proc/$1/stat"; }
# children_seconds: user + system CPU seconds of this shell's finished children so far
# (`times` itself runs in this shell: in a pipeline it would report a subshell's children)
children_seconds() {
  times > "$work/times.txt"
  awk 'NR == 2 {for (k = 1; k <= 2; k++) {split($k, t, /[ms]/); s += 60 * t[1] + t[2]}} END {print s}' "$work/times.txt"
}

# run_wrk LABEL URL SCRIPT ROWS_PER_REQUEST [SERVER_PID] -> prints one result line; with
# SERVER_PID, also the server's CPU time per request during the measured run
run_wrk() {
  local label=$1 url=$2 script=$3 rows=$4 pid=${5:-}
  wrk -t1 -c"$CONNECTIONS" -d2s -s "$script" "$url" >/dev/null 2>&1   # warm-up
  [ -z "$pid" ] || { cpu_ticks "$pid" > "$work/$label.cpu0"; cpu_split "$pid" > "$work/$label.split0"; }
  children_seconds > "$work/$label.wrk0"
  wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$script" "$url" > "$work/$label.txt" 2>&1
  children_seconds > "$work/$label.wrk1"
  [ -z "$pid" ] || { cpu_ticks "$pid" > "$work/$label.cpu1"; cpu_split "$pid" > "$work/$label.split1"; }
  python3 - "$work/$label.txt" "$label" "$rows" <<'PY'
import re, sys
text, label, rows = open(sys.argv[1]).read(), sys.argv[2], int(sys.argv[3])
UNIT_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
def dur(s):
    m = re.fullmatch(r"([\d.]+)(ns|us|ms|s|m)", s)
    return float(m.group(1)) * UNIT_MS[m.group(2)]
try:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    # Percentile lines of --latency ("     99%    4.12ms"), not "92.99%" in the stdev column.
    pct = lambda p: dur(re.search(rf"^\s+{p}%\s+(\S+)$", text, re.M).group(1))
    p50, p99 = pct(50), pct(99)
except (AttributeError, KeyError):
    sys.exit(f"cannot read wrk output of {label}:\n{text}")
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errs = re.search(r"Socket errors: .*", text)
print(f"{label:<28} {rps:>10.0f} req/s {rps*rows:>10.0f} rows/s   p50 {p50:7.3f} ms   p99 {p99:7.3f} ms"
      + (f"   NON-2XX {non2xx.group(1)}" if non2xx else "") + (f"   {errs.group(0)}" if errs else ""))
with open(sys.argv[1] + ".rps", "w") as f: f.write(str(rps))
with open(sys.argv[1] + ".requests", "w") as f: f.write(re.search(r"(\d+) requests in", text).group(1))
PY
}

echo "# bench: wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds, server workers=$WORKERS, $(nproc) cores"
declare -A port_of pid_of

# start_api NAME ENV... : starts the API with extra settings and waits until it is ready
start_api() {
  local name=$1; shift
  local p; p=$(free_port)
  env APP_SERVER__PORT="$p" APP_SERVER__WORKERS="$WORKERS" "$@" $BIN > "$work/api-$name.log" 2>&1 & pids+=($!)
  wait_http "http://127.0.0.1:$p/ready"
  port_of[$name]=$p
  pid_of[$name]=$!
}

if $ACCESS_LOG; then
  modes=(all off errors)
  for m in "${modes[@]}"; do start_api "access-$m" APP_LOG__ACCESS="$m"; done
  for round in $(seq 1 "$ROUNDS"); do
    echo "## round $round"
    for k in 0 1 2; do
      m=${modes[$(( (k + round - 1) % 3 ))]}
      run_wrk "access-$m-$round" "http://127.0.0.1:${port_of[access-$m]}/predict" "$work/single.lua" 1 "${pid_of[access-$m]}"
    done
  done
  python3 - "$work" "$ROUNDS" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
w, rounds, hz = sys.argv[1], range(1, int(sys.argv[2]) + 1), int(sys.argv[3])
num = lambda f: float(open(f"{w}/{f}").read())
r = lambda m, i: num(f"access-{m}-{i}.txt.rps")
# The server's CPU time (all its threads, the log writer's too) per request of the measured run.
cpu = lambda m, i: 1e6 * (num(f"access-{m}-{i}.cpu1") - num(f"access-{m}-{i}.cpu0")) / hz / num(f"access-{m}-{i}.txt.requests")
def lines(m):
    """The access lines in the server's log, by status."""
    import collections, json
    statuses = collections.Counter(json.loads(l).get("status") for l in open(f"{w}/api-access-{m}.log")
                                   if "request completed" in l)
    return ", ".join(f"{n} x {s}" for s, n in sorted(statuses.items())) or "none"
med = statistics.median
print(f"# single-row /predict, medians over {len(rounds)} rounds")
for m in ("all", "errors", "off"):
    print(f"log.access={m:<7} {med(r(m, i) for i in rounds):>8.0f} req/s   server CPU {med(cpu(m, i) for i in rounds):6.2f} us/request"
          f"   access lines: {lines(m)}")
for m in ("all", "errors"):
    costs = [1e6 * (1 / r(m, i) - 1 / r("off", i)) for i in rounds]
    cpus = [cpu(m, i) - cpu("off", i) for i in rounds]
    print(f"log.access={m} over off: 1/rate {med(costs):+.2f} us per request "
          f"(rounds: {', '.join(f'{c:+.2f}' for c in costs)}; throughput {med(r(m, i) / r('off', i) - 1 for i in rounds):+.1%}); "
          f"server CPU {med(cpus):+.2f} us per request (rounds: {', '.join(f'{c:+.2f}' for c in cpus)})")
PY
  exit 0
fi

port=$(free_port)
$HELLO "127.0.0.1:$port" "$WORKERS" & pids+=($!)
wait_http "http://127.0.0.1:$port/" -X POST
port_of[hello]=$port

start_api per_worker APP_MODEL__SESSION_SHARING=per_worker
start_api shared APP_MODEL__SESSION_SHARING=shared
start_api nodrift APP_QUALITY__DRIFT_TRACKING=false
start_api alone APP_MODEL__COALESCE_MAX_ROWS=0

# batch_rows NAME: "rows calls seconds" so far on that server: rows and calls from
# inference_batch_size (rows per ONNX call), seconds inside ONNX Runtime from
# inference_model_run_duration_seconds, summed over the models (the load goes to one)
batch_rows() {
  curl -fs "http://127.0.0.1:${port_of[$1]}/metrics" |
    awk '/^inference_batch_size_sum/ {s+=$2} /^inference_batch_size_count/ {c+=$2}
         /^inference_model_run_duration_seconds_sum/ {t+=$2} END {print s+0, c+0, t+0}'
}

# run_ort_alone ROUND: ONNX Runtime alone, one runner per core on 100-row batches, as long as a
# wrk run; writes its rows/s where the summary reads it
run_ort_alone() {
  children_seconds > "$work/ort-alone-$1.cpu0"
  "$ORT_ALONE" --threads "$(nproc)" --rows 100 --seconds "$DURATION" > "$work/ort-alone-$1.txt"
  children_seconds > "$work/ort-alone-$1.cpu1"
  local line; line=$(grep '^ort-alone ' "$work/ort-alone-$1.txt")
  printf '%-28s %s\n' "ort-alone-100rows-$1" "${line#ort-alone }"
  sed -E 's/.*rows_per_second=([0-9.]+).*/\1/' <<<"$line" > "$work/ort-alone-$1.rows"
}

# The V2 inference route (POST /v2/models/{name}/infer): measured when the API answers it.
v2_url="http://127.0.0.1:${port_of[per_worker]}/v2/models/breast-cancer/infer"
v2_status=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  --data-binary @"$work/v2-single.json" "$v2_url" || true)
V2=false
if [ "$v2_status" = 200 ]; then V2=true; else echo "# V2 route: HTTP $v2_status, not measured"; fi

for round in $(seq 1 "$ROUNDS"); do
  echo "## round $round"
  run_wrk "hello-floor-$round" "http://127.0.0.1:${port_of[hello]}/" "$work/hello.lua" 1
  batch_rows per_worker >> "$work/calls-before.txt"
  run_wrk "predict-1row-per_worker-$round" "http://127.0.0.1:${port_of[per_worker]}/predict" "$work/single.lua" 1
  batch_rows per_worker >> "$work/calls-after.txt"
  # Each V2 run next to what it is compared with: single-row /predict, ONNX Runtime alone.
  ! $V2 || run_wrk "v2-1row-json-$round" "$v2_url" "$work/v2-single.lua" 1
  batch_rows per_worker >> "$work/batch-before.txt"
  run_wrk "predict-100rows-per_worker-$round" "http://127.0.0.1:${port_of[per_worker]}/predict" "$work/batch.lua" 100 "${pid_of[per_worker]}"
  batch_rows per_worker >> "$work/batch-after.txt"
  run_ort_alone "$round"
  ! $V2 || run_wrk "v2-100rows-binary-$round" "$v2_url" "$work/v2-batch-binary.lua" 100
  python3 - "$work" "$round" "$V2" <<'PY'
import sys
w, i, v2 = sys.argv[1], sys.argv[2], sys.argv[3] == "true"
num = lambda f: float(open(f"{w}/{f}").read())
alone = num(f"ort-alone-{i}.rows")
line = f"round {i}: 100-row /predict at {100 * num(f'predict-100rows-per_worker-{i}.txt.rps') / alone:.1%} of ONNX Runtime alone (target >= 50%)"
if v2:
    line += (f"; 100-row V2 binary at {100 * num(f'v2-100rows-binary-{i}.txt.rps') / alone:.1%} (target >= 70%)"
             f"; single-row V2 JSON at {num(f'v2-1row-json-{i}.txt.rps') / num(f'predict-1row-per_worker-{i}.txt.rps'):.1%}"
             " of single-row /predict (target >= 90%)")
print(line)
PY
  run_wrk "predict-1row-shared-$round" "http://127.0.0.1:${port_of[shared]}/predict" "$work/single.lua" 1
  run_wrk "predict-100rows-shared-$round" "http://127.0.0.1:${port_of[shared]}/predict" "$work/batch.lua" 100
  run_wrk "predict-1row-nodrift-$round" "http://127.0.0.1:${port_of[nodrift]}/predict" "$work/single.lua" 1
  run_wrk "predict-1row-alone-$round" "http://127.0.0.1:${port_of[alone]}/predict" "$work/single.lua" 1
done

python3 - "$work" "$ROUNDS" "$V2" "$(getconf CLK_TCK)" "$DURATION" <<'PY'
import os, statistics, sys
w, rounds, v2 = sys.argv[1], range(1, int(sys.argv[2]) + 1), sys.argv[3] == "true"
hz, duration = int(sys.argv[4]), float(sys.argv[5])
# Sums over rounds of the "rows calls seconds" lines batch_rows wrote.
totals = lambda f: [sum(float(l.split()[k]) for l in open(f"{w}/{f}")) for k in (0, 1, 2)]
r = lambda n, i: float(open(f"{w}/{n}-{i}.txt.rps").read())
med = lambda f: statistics.median(f(i) for i in rounds)
single = med(lambda i: r("predict-1row-per_worker", i))
ratio = med(lambda i: r("predict-1row-per_worker", i) / r("hello-floor", i))
rows = med(lambda i: r("predict-100rows-per_worker", i) * 100)
print(f"# medians over {len(rounds)} rounds")
print(f"single-row predict / hello floor (same round): {ratio:.1%}  (target >= 50%; "
      f"single-row req/s {single:.0f}, target >= 20000)")
print(f"100-row batches: {rows:.0f} rows/s  (target >= 250000)")
alone = lambda i: float(open(f"{w}/ort-alone-{i}.rows").read())
print(f"ONNX Runtime alone, {os.cpu_count()} runners on 100-row batches: {med(alone):.0f} rows/s "
      f"({1e6 * os.cpu_count() / med(alone):.2f} us per row per runner)")
print(f"100-row /predict / ONNX Runtime alone (same round): "
      f"{med(lambda i: 100 * r('predict-100rows-per_worker', i) / alone(i)):.1%}  (target >= 50%; rounds: "
      + ", ".join(f"{100 * r('predict-100rows-per_worker', i) / alone(i):.1%}" for i in rounds) + ")")
if v2:
    print(f"100-row V2 binary / ONNX Runtime alone (same round): "
          f"{med(lambda i: 100 * r('v2-100rows-binary', i) / alone(i)):.1%}  (target >= 70%)")
    print(f"single-row V2 JSON / single-row /predict (same round): "
          f"{med(lambda i: r('v2-1row-json', i) / r('predict-1row-per_worker', i)):.1%}  (target: within 10%)")
else:
    print("V2 ratios (100-row binary vs ONNX Runtime alone, target >= 70%; single-row V2 JSON vs "
          "/predict, target within 10%): not measured, the API does not answer the V2 route")
(brows0, bcalls0, bsec0), (brows1, bcalls1, bsec1) = totals("batch-before.txt"), totals("batch-after.txt")
per_row = (bsec1 - bsec0) / (brows1 - brows0)
print(f"  inside the API, ONNX runs took {per_row * 1e6:.2f} us per row in the 100-row runs (wall clock, "
      f"{(brows1 - brows0) / (bcalls1 - bcalls0):.1f} rows per call)")
def split(i):
    """CPU microseconds per 100-row request: API user, API system, wrk; and what the cores had left."""
    n = f"predict-100rows-per_worker-{i}.txt"
    requests = float(open(f"{w}/{n}.requests").read())
    (u0, s0), (u1, s1) = ([float(x) for x in open(f"{w}/{n.replace('.txt', '')}.split{k}").read().split()] for k in (0, 1))
    wrk = float(open(f"{w}/{n.replace('.txt', '')}.wrk1").read()) - float(open(f"{w}/{n.replace('.txt', '')}.wrk0").read())
    parts = [1e6 * (u1 - u0) / hz / requests, 1e6 * (s1 - s0) / hz / requests, 1e6 * wrk / requests]
    return parts + [1e6 * os.cpu_count() * duration / requests - sum(parts)]
cpu = [statistics.median(split(i)[k] for i in rounds) for k in range(4)]
def alone_cpu(i):
    """CPU microseconds ONNX Runtime alone spent per 100 rows (loading and warm-up included)."""
    seconds = float(open(f"{w}/ort-alone-{i}.cpu1").read()) - float(open(f"{w}/ort-alone-{i}.cpu0").read())
    batches = float(open(f"{w}/ort-alone-{i}.txt").read().split("batches=")[1].split()[0])
    return 1e6 * seconds / batches
print(f"  CPU per 100-row request (medians): API user {cpu[0]:.0f} us, API system {cpu[1]:.0f} us, wrk {cpu[2]:.0f} us, "
      f"left to other processes or idle {cpu[3]:.0f} us of the {os.cpu_count()} cores; ONNX Runtime alone: "
      f"{med(alone_cpu):.0f} us of CPU per 100 rows ({100 * 1e6 * os.cpu_count() / med(alone):.0f} us of wall clock per runner)")
# The same share by CPU time, which other processes on the machine do not distort: what ONNX
# Runtime alone spends per 100 rows over what the API and wrk spend per 100-row request.
print(f"  by CPU time (same round): ONNX Runtime alone's CPU per 100 rows / (API + wrk CPU per 100-row request): "
      f"{med(lambda i: alone_cpu(i) / sum(split(i)[:3])):.1%}; without wrk: {med(lambda i: alone_cpu(i) / sum(split(i)[:2])):.1%}")
print(f"per_worker vs shared session, single row: "
      f"{med(lambda i: r('predict-1row-per_worker', i) / r('predict-1row-shared', i)):.2f}x; "
      f"100 rows: {med(lambda i: r('predict-100rows-per_worker', i) / r('predict-100rows-shared', i)):.2f}x")
alone = med(lambda i: r("predict-1row-per_worker", i) / r("predict-1row-alone", i))
(rows0, calls0, _), (rows1, calls1, _) = totals("calls-before.txt"), totals("calls-after.txt")
print(f"coalescing concurrent requests vs every request alone, single row: {alone:.2f}x  "
      f"({(rows1 - rows0) / (calls1 - calls0):.1f} rows per ONNX call under single-row load)")
cost = med(lambda i: 1 - r("predict-1row-per_worker", i) / r("predict-1row-nodrift", i))
print(f"drift tracking cost, single row: {cost:+.1%}  (per_worker with drift vs without, same round; target < 5%)")
PY
