"""Faults across the stack (issue 14): during steady traffic, Prometheus, Alertmanager and the
exporter are killed (SIGKILL) one at a time and started again on the same data. Predictions stay
100% successful throughout, and after each comes back the alerting path works: an alert that
fires after the restart (ExporterDown, made by stopping the exporter) is delivered, and its
resolution too.

Runs after test_2_alerts.py (the API is up again after its drift step).
"""

from __future__ import annotations

import re
import time

import requests
from conftest import SUMMARY
from harness import wait_for
from test_2_alerts import matching

DOWN_FOR = 3.0  # seconds each component stays dead
DELIVERY_TIMEOUT = 60.0


def predict_statuses(stack) -> dict[str, float]:
    """`/predict` responses by status, from the API's own /metrics (not through Prometheus)."""
    text = requests.get(f"http://127.0.0.1:{stack.ports.api}/metrics", timeout=5).text
    out: dict[str, float] = {}
    for m in re.finditer(r'^inference_http_requests_total\{route="/predict",method="POST",status="(\d+)"\} (\S+)$',
                         text, flags=re.M):
        out[m.group(1)] = float(m.group(2))
    return out


def notifications(stack, alert: str, status: str) -> int:
    emails, _ = matching(stack, alert, status)
    return len(emails)


def exporter_down_round_trip(stack, after: str) -> str:
    """Stops the exporter, waits for a new ExporterDown email, starts it, waits for the resolved
    one. Returns how long each took."""
    fired, resolved = notifications(stack, "ExporterDown", "firing"), notifications(stack, "ExporterDown", "resolved")
    t0 = time.time()
    stack.procs["exporter"].stop()
    wait_for(f"a new ExporterDown email after {after}",
             lambda: notifications(stack, "ExporterDown", "firing") > fired, DELIVERY_TIMEOUT,
             detail=lambda: stack.diagnostics())
    t1 = time.time()
    stack.start_service("exporter")
    wait_for(f"the ExporterDown resolved email after {after}",
             lambda: notifications(stack, "ExporterDown", "resolved") > resolved, DELIVERY_TIMEOUT,
             detail=lambda: stack.diagnostics())
    return f"ExporterDown email {t1 - t0:.0f} s after stopping the exporter, resolved {time.time() - t1:.0f} s after its start"


def test_killing_prometheus_alertmanager_and_the_exporter_loses_no_prediction(stack):
    steady = stack.traffic("steady", 20.0, "600s", seed=5)
    wait_for("steady traffic reaching the API", lambda: predict_statuses(stack).get("200", 0) > 0, 30)
    before = predict_statuses(stack)
    timings = []
    try:
        for name in ("prometheus", "alertmanager", "exporter"):
            stack.procs[name].kill()
            time.sleep(DOWN_FOR)
            assert stack.procs["inference-api"].running(), f"the API died with {name}"
            stack.start_service(name)
            timings.append(f"{name} killed and back: " + exporter_down_round_trip(stack, f"{name} came back"))
    finally:
        steady.stop()
    after = predict_statuses(stack)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert delta.get("200", 0) > 0, f"no prediction served during the faults: {delta}"
    assert all(v == 0 for k, v in delta.items() if k != "200"), f"predictions failed during the faults: {delta}"
    SUMMARY.append(f"faults: {delta.get('200', 0):.0f} predictions, all 200, while " + "; ".join(timings))
