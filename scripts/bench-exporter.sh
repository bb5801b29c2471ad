#!/usr/bin/env bash
# Benchmarks the exporter against Debian's prometheus-node-exporter, in one run on this machine:
#   - steady-state resident memory (VmRSS) of each, after warm-up and 1,000 scrapes;
#   - scrape latency (p50/p99/max) over 1,000 sequential scrapes on one keep-alive connection;
#   - CPU used at a 1 s scrape interval, from utime+stime in /proc/<pid>/stat over BENCH_CPU_SECONDS.
# Targets (issue 3): exporter RSS <= 15 MiB and below node_exporter's; p99 <= 5 ms; CPU <= 1% of a core.
#
# Usage: scripts/bench-exporter.sh            (from anywhere; builds the release binary first)
# Env:   BENCH_SCRAPES (1000), BENCH_CPU_SECONDS (60), NODE_EXPORTER (prometheus-node-exporter),
#        BENCH_NO_BUILD=1 to reuse target/release/exporter.
# Needs: cargo, python3 (standard library only), prometheus-node-exporter (apt).
# Exits non-zero when a target is missed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
scrapes="${BENCH_SCRAPES:-1000}"
cpu_seconds="${BENCH_CPU_SECONDS:-60}"
node_exporter="${NODE_EXPORTER:-prometheus-node-exporter}"
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
exporter_bin="$target_dir/release/exporter"

command -v "$node_exporter" >/dev/null || { echo "missing $node_exporter (apt-get install prometheus-node-exporter)" >&2; exit 2; }
if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
  cargo build --release -p exporter
fi

# free_port
source scripts/lib/bench-common.sh

workdir="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$workdir"
}
trap cleanup EXIT

exporter_port="$(free_port)"
node_port="$(free_port)"
# Default configuration (log level info: one access-log line per scrape, as in production).
APP_SERVER__HOST=127.0.0.1 APP_SERVER__PORT="$exporter_port" \
  "$exporter_bin" >"$workdir/exporter.log" 2>&1 &
pids+=("$!"); exporter_pid=$!
"$node_exporter" --web.listen-address="127.0.0.1:$node_port" >"$workdir/node_exporter.log" 2>&1 &
pids+=("$!"); node_pid=$!

python3 - "$exporter_port" "$exporter_pid" "$node_port" "$node_pid" "$scrapes" "$cpu_seconds" <<'PY'
import http.client, os, sys, time

exporter_port, exporter_pid, node_port, node_pid, scrapes, cpu_seconds = map(int, sys.argv[1:])
targets = {"exporter": (exporter_port, exporter_pid), "node_exporter": (node_port, node_pid)}
ticks = os.sysconf("SC_CLK_TCK")

def wait_ready(port):
    deadline = time.monotonic() + 10
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/metrics"); c.getresponse().read(); c.close(); return
        except OSError:
            if time.monotonic() > deadline: raise
            time.sleep(0.05)

def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1])

def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime

def scrape(conn):
    conn.request("GET", "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"})
    r = conn.getresponse(); body = r.read()
    if r.status != 200: raise SystemExit(f"scrape answered {r.status}")
    return len(body)

for port, _ in targets.values(): wait_ready(port)
load_at_start = os.getloadavg()
time.sleep(1)  # let the CPU sampler take its first reading

results = {}
for name, (port, pid) in targets.items():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(20): scrape(conn)  # warm-up
    latencies = []
    size = 0
    for _ in range(scrapes):
        t = time.perf_counter(); size = scrape(conn); latencies.append(time.perf_counter() - t)
    conn.close()
    latencies.sort()
    pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    results[name] = {"p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": latencies[-1] * 1000,
                     "body_bytes": size, "rss_after_scrapes_mib": rss_kib(pid) / 1024}

# A 1 s scrape interval, both exporters, for cpu_seconds.
conns = {n: http.client.HTTPConnection("127.0.0.1", p, timeout=5) for n, (p, _) in targets.items()}
start_ticks = {n: cpu_ticks(pid) for n, (_, pid) in targets.items()}
start = time.monotonic()
for i in range(cpu_seconds):
    for n in targets: scrape(conns[n])
    next_tick = start + i + 1
    time.sleep(max(0.0, next_tick - time.monotonic()))
elapsed = time.monotonic() - start
for n, (_, pid) in targets.items():
    used = (cpu_ticks(pid) - start_ticks[n]) / ticks
    results[n]["cpu_percent_of_core"] = 100 * used / elapsed
    results[n]["rss_steady_mib"] = rss_kib(pid) / 1024

print(f"\n{'':14}{'RSS MiB':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'CPU %core':>11}{'body B':>9}")
for n, r in results.items():
    print(f"{n:14}{r['rss_steady_mib']:9.1f}{r['p50_ms']:9.2f}{r['p99_ms']:9.2f}{r['max_ms']:9.2f}"
          f"{r['cpu_percent_of_core']:11.3f}{r['body_bytes']:9d}")
print(f"({scrapes} sequential keep-alive scrapes for latency; CPU at one scrape/s over {elapsed:.0f} s;"
      f" RSS = VmRSS at the end)")
print(f"machine: {os.cpu_count()} CPUs, load average at start {load_at_start[0]:.2f}, at end {os.getloadavg()[0]:.2f}"
      " (latency tails grow when other work competes for the CPUs)")

e, node = results["exporter"], results["node_exporter"]
checks = [
    ("exporter RSS <= 15 MiB", e["rss_steady_mib"] <= 15),
    ("exporter RSS < node_exporter RSS", e["rss_steady_mib"] < node["rss_steady_mib"]),
    ("exporter scrape p99 <= 5 ms", e["p99_ms"] <= 5),
    ("exporter CPU <= 1% of a core at 1 scrape/s", e["cpu_percent_of_core"] <= 1),
]
for what, ok in checks: print(f"{'PASS' if ok else 'FAIL'}  {what}")
sys.exit(0 if all(ok for _, ok in checks) else 1)
PY
