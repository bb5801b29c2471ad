"""`scripts/stack.sh`: the end-to-end test's processes, long-running, for developing dashboards
and rules without Docker. State (rendered configs, data, logs, received notifications, pids)
lives in .stack/ at the repository root, which ignores itself in git.

    stackctl.py up       start everything (fails if already up), print the addresses
    stackctl.py down     stop everything `up` started (process groups), keep .stack/ data
    stackctl.py status   what runs where
    stackctl.py reload   re-render the configs and reload Prometheus and Alertmanager

Ports: fixed defaults (STACK_PORT_<NAME>, e.g. STACK_PORT_PROMETHEUS=19090, overrides one).
Rules and templates are used in place from prometheus/ and alertmanager/ (edit, then `reload`);
prometheus.yml and alertmanager.yml are re-rendered with the local addresses on every reload.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import Intervals, Ports, Process, http_ok, wait_for  # noqa: E402
from sinks import SLACK_PATH  # noqa: E402

STATE = Path(os.environ.get("STACK_DIR", harness.ROOT / ".stack"))
PIDS = STATE / "pids.json"
DEFAULT_PORTS = {"api": 18000, "exporter": 19101, "traffic": 19102, "prometheus": 19090,
                 "alertmanager": 19093, "smtp": 11025, "webhook": 18025}
# Committed `for:` durations and grouping; only the scrape/evaluation intervals are shortened.
INTERVALS = Intervals(scrape=os.environ.get("STACK_SCRAPE_INTERVAL", "5s"),
                      evaluation=os.environ.get("STACK_EVALUATION_INTERVAL", "5s"),
                      group_wait="10s", group_interval="1m")
TRAFFIC_SCENARIO = os.environ.get("STACK_SCENARIO", "mixed")
TRAFFIC_RATE = os.environ.get("STACK_RATE", "10")


def ports() -> Ports:
    return Ports(**{k: int(os.environ.get(f"STACK_PORT_{k.upper()}", v)) for k, v in DEFAULT_PORTS.items()})


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def read_pids() -> dict[str, int]:
    try:
        return json.loads(PIDS.read_text())
    except (OSError, ValueError):
        return {}


def alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def render(p: Ports) -> harness.Rendered:
    return harness.render(STATE / "config", p, INTERVALS, f"http://127.0.0.1:{p.webhook}{SLACK_PATH}",
                          rules_in_place=True)


def addresses(p: Ports) -> str:
    return "\n".join([
        f"  inference API   http://127.0.0.1:{p.api}  (/predict, /metrics, /model)",
        f"  exporter        http://127.0.0.1:{p.exporter}/metrics  (model bundle copy: {STATE / 'models' / 'breast-cancer'})",
        f"  traffic-gen     http://127.0.0.1:{p.traffic}/metrics  (scenario {TRAFFIC_SCENARIO}, {TRAFFIC_RATE} req/s)",
        f"  Prometheus      http://127.0.0.1:{p.prometheus}  (classic UI at /classic/graph)",
        f"  Alertmanager    http://127.0.0.1:{p.alertmanager}/api/v2/alerts  (Debian build: API only, or amtool)",
        f"  SMTP sink       127.0.0.1:{p.smtp} -> {STATE / 'sinks' / 'email'}/*.eml",
        f"  Slack sink      http://127.0.0.1:{p.webhook} -> {STATE / 'sinks' / 'slack'}/*.json",
        f"  logs            {STATE / 'logs'}/*.log",
    ])


def up() -> int:
    running = {n: pid for n, pid in read_pids().items() if alive(pid)}
    if running:
        print(f"stack already up ({', '.join(running)}); `scripts/stack.sh down` first", file=sys.stderr)
        return 1
    for binary in ("inference-api", "exporter", "traffic-gen"):
        if not (harness.RELEASE / binary).is_file():
            print(f"missing {harness.RELEASE / binary}: cargo build --release --workspace --bins", file=sys.stderr)
            return 1
    p = ports()
    busy = [f"{k}={v}" for k, v in vars(p).items() if port_in_use(v)]
    if busy:
        print(f"ports in use: {', '.join(busy)} (override with STACK_PORT_<NAME>=...)", file=sys.stderr)
        return 1
    STATE.mkdir(exist_ok=True)
    (STATE / ".gitignore").write_text("*\n")
    (STATE / "logs").mkdir(exist_ok=True)
    bundle = STATE / "models" / "breast-cancer"
    if not bundle.exists():
        harness.copy_bundle(bundle)
    rendered = render(p)
    logs = STATE / "logs"
    procs = [
        Process("sinks", [harness.sys_python(), Path(__file__).with_name("sinks.py"), "--dir", STATE / "sinks",
                          "--smtp-port", p.smtp, "--webhook-port", p.webhook], logs / "sinks.log"),
        Process("alertmanager", harness.alertmanager_argv(rendered.alertmanager_config, STATE / "am-data", p.alertmanager),
                logs / "alertmanager.log"),
        Process("prometheus", harness.prometheus_argv(rendered.prometheus_config, STATE / "prom-data", p.prometheus,
                                                      lifecycle=True), logs / "prometheus.log"),
        Process("exporter", [harness.RELEASE / "exporter"], logs / "exporter.log", harness.exporter_env(p.exporter, bundle)),
        Process("inference-api", [harness.RELEASE / "inference-api"], logs / "inference-api.log", harness.api_env(p.api, bundle=bundle)),
    ]
    PIDS.write_text(json.dumps({pr.name: pr.pid for pr in procs}))
    try:
        wait_for("inference-api /ready", lambda: http_ok(f"http://127.0.0.1:{p.api}/ready"), 30)
        traffic = Process("traffic-gen", harness.traffic_argv(p.api, p.traffic, TRAFFIC_SCENARIO, float(TRAFFIC_RATE),
                                                              "365d", seed=1), logs / "traffic-gen.log")
        procs.append(traffic)
        PIDS.write_text(json.dumps({pr.name: pr.pid for pr in procs}))
        for name, url in (("prometheus", f"http://127.0.0.1:{p.prometheus}/-/ready"),
                          ("alertmanager", f"http://127.0.0.1:{p.alertmanager}/-/ready"),
                          ("exporter", f"http://127.0.0.1:{p.exporter}/health"),
                          ("traffic-gen", f"http://127.0.0.1:{p.traffic}/health")):
            wait_for(f"{name} {url}", lambda url=url: http_ok(url), 30)
    except AssertionError as e:
        print(f"stack did not come up: {e}\nlogs in {logs}; stopping", file=sys.stderr)
        down()
        return 1
    print("stack up (configuration rewrites: " + "; ".join(rendered.changes) + ")")
    print(addresses(p))
    return 0


def down() -> int:
    pids = read_pids()
    if not pids:
        print("stack not running")
        return 0
    for pid in reversed(list(pids.values())):
        if alive(pid):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for name, pid in pids.items():
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if alive(pid):
            print(f"{name} (pid {pid}) ignored SIGTERM; killing")
            os.killpg(pid, signal.SIGKILL)
    PIDS.unlink(missing_ok=True)
    print(f"stack down (data, logs and received notifications kept in {STATE})")
    return 0


def status() -> int:
    pids = read_pids()
    if not pids:
        print("stack not running")
        return 3
    for name, pid in pids.items():
        print(f"  {name:<14} pid {pid:<8} {'running' if alive(pid) else 'NOT RUNNING'}")
    print(addresses(ports()))
    return 0 if all(alive(pid) for pid in pids.values()) else 1


def reload() -> int:
    p = ports()
    render(p)
    for name, url in (("prometheus", f"http://127.0.0.1:{p.prometheus}/-/reload"),
                      ("alertmanager", f"http://127.0.0.1:{p.alertmanager}/-/reload")):
        r = requests.post(url, timeout=10)
        print(f"{name}: reload {r.status_code} {r.text.strip()}")
        if r.status_code != 200:
            return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status", "reload"])
    return {"up": up, "down": down, "status": status, "reload": reload}[parser.parse_args().command]()


if __name__ == "__main__":
    sys.exit(main())
