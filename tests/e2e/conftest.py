"""Fixtures of the end-to-end test: the whole stack on 127.0.0.1, in a temporary directory that
is removed (with every process stopped) when the session ends, passed or failed."""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import (  # noqa: E402
    AlertmanagerApi,
    Intervals,
    Ports,
    Process,
    PromApi,
    Rendered,
    http_ok,
    wait_for,
)
from sinks import MailSink, SlackSink  # noqa: E402

# `for:` of every alert in the test: short enough for a bounded run, long enough that "fires
# only after the condition held" is still exercised, and longer than the ~5 s Prometheus takes
# after start to sync its first targets (before that `absent(up{job="inference-api"})` is
# true and would fire InferenceApiDown at startup). Watchdog (0s) keeps its 0s.
TEST_FOR = "10s"
INTERVALS = Intervals(
    scrape="1s",
    evaluation="1s",
    group_wait="1s",
    group_interval="2s",
    for_override=lambda alert, old: old if harness.seconds(old) == 0 else TEST_FOR,
)
STARTUP_TIMEOUT = 30.0


@dataclass
class Stack:
    work: Path
    ports: Ports
    rendered: Rendered
    bundle: Path
    mail: MailSink
    slack: SlackSink
    prom: PromApi
    am: AlertmanagerApi
    procs: dict[str, Process] = field(default_factory=dict)
    traffic_runs: list[Process] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def start(self, name: str, argv: list, env: dict | None = None) -> Process:
        p = Process(name, argv, self.work / "logs" / f"{name}.log", env)
        self.procs[name] = p
        return p

    def start_service(self, name: str) -> Process:
        """Starts Alertmanager, Prometheus or the exporter (again, on the same data directory and
        port after a stop or a crash) and waits until it is ready."""
        work, ports = self.work, self.ports
        argv, env, ready = {
            "alertmanager": (harness.alertmanager_argv(self.rendered.alertmanager_config, work / "am-data",
                                                       ports.alertmanager), None, f"{self.am.base}/-/ready"),
            "prometheus": (harness.prometheus_argv(self.rendered.prometheus_config, work / "prom-data",
                                                   ports.prometheus), None, f"{self.prom.base}/-/ready"),
            "exporter": ([harness.RELEASE / "exporter"], harness.exporter_env(ports.exporter, self.bundle),
                         f"http://127.0.0.1:{ports.exporter}/health"),
        }[name]
        p = self.start(name, argv, env)
        wait_for(f"{name} {ready} = 200", lambda: http_ok(ready), STARTUP_TIMEOUT, detail=lambda: self.logs([name]))
        return p

    def start_api(self, env: dict | None = None) -> Process:
        """Starts the API (again) on its port; `env` adds settings (APP_...)."""
        p = self.start("inference-api", [harness.RELEASE / "inference-api"],
                       {**harness.api_env(self.ports.api, bundle=self.bundle), **(env or {})})
        wait_for("inference-api GET /ready = 200", lambda: http_ok(f"http://127.0.0.1:{self.ports.api}/ready"),
                 STARTUP_TIMEOUT, detail=lambda: self.logs(["inference-api"]))
        return p

    def traffic(self, scenario: str, rate: float, duration: str, seed: int, extra: list[str] | None = None) -> Process:
        """Starts the traffic generator (one process per scenario; the same metrics port each time,
        so Prometheus sees one `traffic-gen` target)."""
        n = len(self.traffic_runs) + 1
        p = Process(f"traffic-gen-{n}-{scenario}",
                    harness.traffic_argv(self.ports.api, self.ports.traffic, scenario, rate, duration, seed, extra),
                    self.work / "logs" / f"traffic-gen-{n}-{scenario}.log")
        self.traffic_runs.append(p)
        return p

    def reload_prometheus(self) -> None:
        """SIGHUP: Prometheus re-reads its configuration and rule files (the test's copies)."""
        self.procs["prometheus"].popen.send_signal(signal.SIGHUP)

    def stop_traffic(self) -> None:
        for p in self.traffic_runs:
            p.stop()

    def all_processes(self) -> list[Process]:
        return list(self.procs.values()) + self.traffic_runs

    def logs(self, names: list[str] | None = None, lines: int = 15) -> str:
        out = []
        for p in self.all_processes():
            if names is None or p.name in names:
                state = "running" if p.running() else f"exited {p.popen.returncode}"
                out.append(f"--- last {lines} lines of {p.name} ({state}, {p.log}):\n{p.tail(lines)}")
        return "\n".join(out)

    def deliveries(self) -> str:
        mails = self.mail.messages
        slacks = self.slack.messages
        out = [f"--- {len(mails)} email(s) at the SMTP sink:"]
        out += [m.describe() for m in mails]
        out.append(f"--- {len(slacks)} message(s) at the Slack webhook sink:")
        out += [s.describe() for s in slacks]
        other = self.slack.other_requests()
        if other:
            out.append(f"--- other requests to the webhook sink: {other}")
        return "\n".join(out)

    def diagnostics(self) -> str:
        try:
            alerts = [f"{a['labels'].get('alertname')} {a['state']} {a['labels']}" for a in self.prom.alerts()]
        except Exception as e:  # noqa: BLE001
            alerts = [f"(cannot list Prometheus alerts: {e!r})"]
        try:
            am_alerts = [f"{a['labels'].get('alertname')} {a['status']['state']}" for a in self.am.alerts()]
        except Exception as e:  # noqa: BLE001
            am_alerts = [f"(cannot list Alertmanager alerts: {e!r})"]
        return "\n".join([
            "--- Prometheus alerts: " + "; ".join(alerts),
            "--- Alertmanager alerts: " + "; ".join(am_alerts),
            self.deliveries(),
            self.logs(),
        ])

    def stop_all(self) -> None:
        for p in reversed(self.all_processes()):
            p.stop()
        self.slack.stop()
        self.mail.stop()


_STACK: Stack | None = None


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")

# Lines for the end-of-run summary (timings measured by the tests, what arrived at the sinks).
SUMMARY: list[str] = []


@pytest.fixture(scope="session")
def stack(request):
    """The whole stack, started once for the session, torn down whatever happens."""
    global _STACK
    for binary in ("inference-api", "exporter", "traffic-gen"):
        if not (harness.RELEASE / binary).is_file():
            pytest.fail(f"missing {harness.RELEASE / binary}: run `cargo build --release --workspace --bins` "
                        "(scripts/e2e.sh does)")
    for tool in (harness.PROMETHEUS_BIN, harness.ALERTMANAGER_BIN):
        if not Path(tool).is_file():
            pytest.fail(f"missing {tool}: run scripts/setup.sh (Debian prometheus, prometheus-alertmanager)")
    if not harness.ONNXRUNTIME.is_file():
        pytest.fail(f"missing {harness.ONNXRUNTIME}: run scripts/fetch-onnxruntime.sh")

    # SIGTERM (a CI timeout, scripts/e2e.sh being stopped) ends the run like Ctrl-C, so the
    # finalizer below still stops every process and removes the work directory.
    signal.signal(signal.SIGTERM, _interrupt)
    work = Path(tempfile.mkdtemp(prefix="modelwatch-e2e-"))
    s: Stack | None = None

    def teardown():
        if s is not None:
            SUMMARY.append(s.deliveries())
            s.stop_all()
        shutil.rmtree(work, ignore_errors=True)

    request.addfinalizer(teardown)
    (work / "logs").mkdir()
    ports = Ports.free()
    mail = MailSink(ports.smtp)
    slack = SlackSink(ports.webhook)
    mail.start()
    slack.start()
    rendered = harness.render(work, ports, INTERVALS, slack.url)
    bundle = harness.copy_bundle(work / "models" / "breast-cancer")
    s = Stack(work, ports, rendered, bundle, mail, slack, PromApi(ports.prometheus), AlertmanagerApi(ports.alertmanager))
    _STACK = s
    SUMMARY.append(f"work dir {work} (removed at the end); ports {ports}")
    SUMMARY.append("rewrites of the committed configuration:\n  " + "\n  ".join(rendered.changes))

    for name in ("alertmanager", "prometheus", "exporter"):
        s.start_service(name)
    s.start_api()
    yield s
    _STACK = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and _STACK is not None:
        report.sections.append(("e2e diagnostics", _STACK.diagnostics()))
    return report


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.section("modelwatch end-to-end summary")
        for line in SUMMARY:
            terminalreporter.write_line(line)
