"""Inhibition of alertmanager/alertmanager.yml, checked against a running Alertmanager (Debian's
0.25, the committed configuration rendered for 127.0.0.1 by the end-to-end test's harness):
alerts are posted to its API and `status.inhibitedBy` says which ones it mutes.

`amtool config routes test` covers routing; nothing offline evaluates inhibit rules, hence this.

    .venv/bin/python -m unittest scripts/monitoring/test_alertmanager.py
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
import time
import unittest
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "e2e"))

import harness  # noqa: E402

# The labels Prometheus (or Grafana) gives each alert, as the rules write them.
API_DOWN = {"alertname": "InferenceApiDown", "severity": "critical", "job": "inference-api"}
# HighLatencyP99 is one alert per prediction route (its `route` label is the route template).
LATENCY = {"alertname": "HighLatencyP99", "severity": "warning", "job": "inference-api", "route": "/predict"}
LATENCY_V2 = {"alertname": "HighLatencyP99", "severity": "warning", "job": "inference-api",
              "route": "/v2/models/{name}/versions/{version}/infer"}
REPLICA_LOST = {"alertname": "InferenceApiReplicaLost", "severity": "warning", "job": "inference-api"}
EXPORTER_DOWN = {"alertname": "ExporterDown", "severity": "warning", "job": "exporter", "instance": "exporter:9101"}
DRIFT = {"alertname": "DataDriftDetected", "severity": "warning", "model": "breast-cancer"}
ACCURACY = {"alertname": "LiveAccuracyLow", "severity": "warning", "model": "breast-cancer"}
STALE = {"alertname": "ModelStale", "severity": "warning", "model": "breast-cancer"}
DISK = {"alertname": "DiskSpaceLow", "severity": "warning", "instance": "exporter:9101", "mountpoint": "/"}
WATCHDOG = {"alertname": "Watchdog", "severity": "none"}
# What Grafana sends when a rule's query fails: the rule's labels (here the HighErrorRate copy's,
# critical) with alertname DatasourceError, and no `job`.
DATASOURCE_ERROR = {"alertname": "DatasourceError", "severity": "critical", "source": "grafana",
                    "grafana_folder": "modelwatch", "rulename": "HighErrorRate"}
GRAFANA_LATENCY = {"alertname": "HighLatencyP99", "severity": "warning", "source": "grafana",
                   "grafana_folder": "modelwatch"}


class RunningAlertmanager:
    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="modelwatch-am-test-"))
        (self.work / "logs").mkdir()
        ports = harness.Ports.free()
        # Notifications are not what is tested: SMTP and Slack point at closed local ports.
        rendered = harness.render(self.work, ports, harness.Intervals(), "http://127.0.0.1:9/slack")
        self.base = f"http://127.0.0.1:{ports.alertmanager}"
        self.proc = harness.Process(
            "alertmanager",
            harness.alertmanager_argv(rendered.alertmanager_config, self.work / "data", ports.alertmanager),
            self.work / "logs" / "alertmanager.log")
        harness.wait_for("Alertmanager ready", lambda: harness.http_ok(f"{self.base}/-/ready"), 20,
                         detail=lambda: self.proc.tail())

    def post(self, *label_sets: dict) -> None:
        ends = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).isoformat()
        body = [{"labels": labels, "annotations": {"summary": "test"}, "endsAt": ends} for labels in label_sets]
        r = requests.post(f"{self.base}/api/v2/alerts", json=body, timeout=5)
        r.raise_for_status()

    def inhibited(self) -> dict[str, bool]:
        """alertname (+ route, + source) -> muted by an inhibit rule."""
        out = {}
        for a in requests.get(f"{self.base}/api/v2/alerts", timeout=5).json():
            key = (a["labels"]["alertname"] + (f" {a['labels']['route']}" if "route" in a["labels"] else "")
                   + (" (grafana)" if a["labels"].get("source") == "grafana" else ""))
            out[key] = bool(a["status"]["inhibitedBy"])
        return out

    def settle(self, muted: set[str], posted: int) -> dict[str, bool]:
        """Waits until every posted alert is listed and the expected ones are muted (which shows
        the inhibitor has seen their sources), then returns the state of all."""
        def ready():
            state = self.inhibited()
            return state if len(state) == posted and all(state.get(k) for k in muted) else None
        try:
            return harness.wait_for("expected inhibitions", ready, 10, interval=0.2)
        except AssertionError:
            return self.inhibited()

    def stop(self) -> None:
        self.proc.stop()
        shutil.rmtree(self.work, ignore_errors=True)


class Inhibition(unittest.TestCase):
    def setUp(self) -> None:
        self.am = RunningAlertmanager()
        self.addCleanup(self.am.stop)

    def check(self, posted: list[dict], muted: set[str]) -> None:
        self.am.post(*posted)
        state = self.am.settle(muted, len(posted))
        self.assertEqual({k for k, v in state.items() if v}, muted, f"muted alerts; all: {state}")

    def test_api_down_mutes_only_the_warnings_of_its_own_job(self):
        # Prometheus alerting works (Watchdog), the API is down: its latency warnings (every
        # prediction route) and replica warning are muted; the exporter's warning (other job) and
        # the warnings without a job are not.
        self.check([WATCHDOG, API_DOWN, LATENCY, LATENCY_V2, REPLICA_LOST, EXPORTER_DOWN, DRIFT, ACCURACY, STALE, DISK],
                   muted={"HighLatencyP99 /predict", "HighLatencyP99 /v2/models/{name}/versions/{version}/infer",
                          "InferenceApiReplicaLost"})

    def test_grafana_datasource_error_mutes_no_model_quality_warning(self):
        # Prometheus is down (no Watchdog): Grafana's rules notify, and one of them cannot query
        # its datasource. Its DatasourceError (critical, no job) must not mute the warnings that
        # have no job either.
        self.check([DATASOURCE_ERROR, DRIFT, ACCURACY, STALE, DISK, GRAFANA_LATENCY], muted=set())

    def test_watchdog_mutes_the_grafana_copies_only(self):
        self.check([WATCHDOG, GRAFANA_LATENCY, DATASOURCE_ERROR, LATENCY, LATENCY_V2, DRIFT],
                   muted={"HighLatencyP99 (grafana)", "DatasourceError (grafana)"})


if __name__ == "__main__":
    unittest.main()
