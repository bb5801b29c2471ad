"""Faults in traffic and in the stack fire the repository's alerts, and Alertmanager delivers
them, once, by email and to the Slack webhook, and their resolution too: the three specified
alerts (HighErrorRate, HighLatencyP99, HighMemoryUsage), InferenceApiDown, ModelStale and
DataDriftDetected.

The tests run in file order and build on each other (errors -> resolve -> slow -> resolve ->
memory -> API down -> stale model -> drift -> a new version resolves the stale model).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import time
import urllib.request

import harness
import yaml
from conftest import INTERVALS, SUMMARY, TEST_FOR
from harness import wait_for

TRAFFIC_RATE = 20.0
CLEAN_RATE = 100.0
# HighLatencyP99: every /predict waits this long while the API runs with its test-only delay, at
# this rate; afterwards fast traffic at DILUTE_RATE brings the 5-minute p99 back under 0.5 s.
SLOW_PREDICT_MS = 800
SLOW_RATE = 10.0
DILUTE_RATE = 1000.0
# Every traffic run is bounded by its own --duration as well as by these waits.
FIRE_TIMEOUT = 60.0
RESOLVE_TIMEOUT = 120.0
DELIVERY_TIMEOUT = 30.0
# After the first notification of a kind arrives, wait this long for a (wrong) second one.
SETTLE = 2 * harness.seconds(INTERVALS.group_interval) + 2

GRAFANA_RULES = harness.ROOT / "grafana-provisioning" / "provisioning" / "alerting" / "rules.yml"

MIXED_NOTE = "the `mixed` demo traffic of test_1_healthy.py"
# Filled by the tests, read by later ones and printed at the end.
timeline: dict[str, float] = {}
firing_labels: dict[str, dict] = {}


def alert_rules() -> dict[str, dict]:
    rules = {}
    for path in sorted((harness.PROM_DIR / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rules[rule["alert"]] = rule
    return rules


def template_regex(template: str, labels: dict) -> re.Pattern:
    """A regex for what a Go-templated annotation renders to: `{{ $labels.x }}` becomes the label's
    value, `{{ else }}...{{ end }}` branches are dropped, any other action matches anything."""
    t = re.sub(r"\{\{-?\s*else\s*-?\}\}.*?\{\{-?\s*end\s*-?\}\}", "{{ end }}", template, flags=re.S)
    out, pos = "", 0
    for m in re.finditer(r"\{\{-?(.*?)-?\}\}", t, flags=re.S):
        out += re.escape(t[pos:m.start()])
        label = re.fullmatch(r"\s*\$labels\.([A-Za-z_][A-Za-z0-9_]*)\s*", m.group(1))
        out += re.escape(labels[label.group(1)]) if label and label.group(1) in labels else ".*?"
        pos = m.end()
    out += re.escape(t[pos:])
    return re.compile(out)


def slack_title(msg) -> str:
    attachments = msg.body.get("attachments") or []
    return (attachments[0].get("title") if attachments else None) or msg.body.get("text") or ""


def is_resolved(title: str) -> bool:
    return re.search(r"\bRESOLVED\b", title, flags=re.I) is not None


def matching(stack, alert: str, status: str):
    want_resolved = status == "resolved"
    emails = [m for m in stack.mail.messages if alert in m.subject and is_resolved(m.subject) == want_resolved]
    slacks = [s for s in stack.slack.messages if alert in slack_title(s) and is_resolved(slack_title(s)) == want_resolved]
    return emails, slacks


def routed_to_slack(labels: dict) -> bool:
    """Whether the committed alertmanager.yml sends an alert with these labels to Slack too."""
    out = subprocess.run(["amtool", "config", "routes", "test", f"--config.file={harness.AM_DIR / 'alertmanager.yml'}",
                          *(f"{k}={v}" for k, v in labels.items())], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "email-and-slack"


def expect_delivered(stack, alert: str, status: str, labels: dict):
    """Waits for the `status` notification of `alert`: one email (and one Slack message when the
    committed routes send it to Slack), each naming the alert, with its summary and runbook link.
    Returns them."""
    rule = alert_rules()[alert]
    slack = routed_to_slack(labels)
    summary = template_regex(rule["annotations"]["summary"], labels)
    runbook = re.compile(r"https?://[^\s|>\"]*" + re.escape(rule["annotations"]["runbook_url"]))
    channels = "an email and a Slack message" if slack else "an email (warning: no Slack by route)"
    expected = (f"expected {channels} for {status} {alert}: title naming it, summary matching "
                f"/{summary.pattern}/, runbook link matching /{runbook.pattern}/")

    def arrived():
        emails, slacks = matching(stack, alert, status)
        return emails and (slacks or not slack)

    wait_for(f"{status} {alert} notifications", arrived, DELIVERY_TIMEOUT, detail=lambda: expected + "\n" + stack.deliveries())
    time.sleep(SETTLE)
    emails, slacks = matching(stack, alert, status)
    assert len(emails) == 1, f"{expected}\nexactly one email, got {len(emails)}\n{stack.deliveries()}"
    assert len(slacks) == (1 if slack else 0), (
        f"{expected}\n{'exactly one' if slack else 'no'} Slack message, got {len(slacks)}\n{stack.deliveries()}")
    mail = emails[0]
    assert summary.search(mail.text), f"{expected}\nsummary missing from the email:\n{mail.describe()}"
    assert runbook.search(mail.text) and runbook.search(mail.html), (
        f"{expected}\nrunbook link missing from the email:\n{mail.describe()}")
    msg = slacks[0] if slack else None
    if msg is not None:
        assert any(k in msg.body for k in ("text", "attachments", "blocks")), f"not a Slack payload: {msg.raw}"
        text = msg.all_text()
        assert alert in text and summary.search(text), f"{expected}\nSlack message without the summary:\n{msg.raw}"
        assert runbook.search(text), f"{expected}\nSlack message without the runbook link:\n{msg.raw}"
    return mail, msg


def wait_firing(stack, alert: str, timeout: float = FIRE_TIMEOUT) -> list[dict]:
    return wait_for(f"Prometheus alert {alert} firing", lambda: stack.prom.firing(alert), timeout,
                    detail=lambda: stack.diagnostics())


def grafana_condition_holds(stack, title: str) -> str:
    """The Grafana-managed copy of an alert: its Prometheus query, reduced (last) and compared with
    its threshold, evaluated against the same Prometheus while the Prometheus alert fires. No
    Grafana runs here; this is the part of its rule that can be checked. Returns a summary line."""
    rule = next(r for g in yaml.safe_load(GRAFANA_RULES.read_text())["groups"] for r in g["rules"]
                if r["title"] == title)
    data = {q["refId"]: q for q in rule["data"]}
    condition = data[rule["condition"]]["model"]
    assert condition["type"] == "threshold", f"unexpected condition {condition}"
    evaluator = condition["conditions"][0]["evaluator"]
    reduce = data[condition["expression"]]["model"]
    assert reduce["type"] == "reduce" and reduce["reducer"] == "last", f"unexpected reduce step {reduce}"
    query = data[reduce["expression"]]
    assert query["datasourceUid"] == "prometheus"
    values = [float(s["value"][1]) for s in stack.prom.query(query["model"]["expr"])]
    ops = {"gt": lambda v, t: v > t, "lt": lambda v, t: v < t}
    assert values and any(ops[evaluator["type"]](v, evaluator["params"][0]) for v in values), (
        f"Grafana {title}: {query['model']['expr']} = {values}, expected {evaluator['type']} {evaluator['params'][0]}")
    return f"Grafana {title} query {query['model']['expr']} = {values} ({evaluator['type']} {evaluator['params'][0]})"


def first_bad_predict_after(log_text: str, since: float) -> float | None:
    """Time of the first non-2xx /predict response in the API's bunyan access log after `since`."""
    for line in log_text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("route") != "/predict" or not rec.get("status") or rec["status"] < 400:
            continue
        stamp = re.sub(r"(\.\d{6})\d*", r"\1", rec["time"]).replace("Z", "+00:00")
        t = dt.datetime.fromisoformat(stamp).timestamp()
        if t >= since:
            return t
    return None


def test_errors_fire_high_error_rate_once_by_email_and_slack(stack):
    timeline["errors_started"] = time.time()
    errors = stack.traffic("errors", TRAFFIC_RATE, "180s", seed=2)
    firing = wait_firing(stack, "HighErrorRate")
    timeline["prometheus_firing"] = time.time()

    grafana = grafana_condition_holds(stack, "HighErrorRate")
    firing_labels["HighErrorRate"] = firing[0]["labels"]
    mail, _ = expect_delivered(stack, "HighErrorRate", "firing", firing[0]["labels"])
    errors.stop()
    first_bad = first_bad_predict_after(stack.procs["inference-api"].tail(1_000_000), timeline["errors_started"])
    assert first_bad is not None, "no bad /predict request in the API log"
    timeline["first_bad_request"] = first_bad
    timeline["email"] = mail.arrived
    SUMMARY.append(grafana)
    SUMMARY.append(
        f"end-to-end: first bad request -> HighErrorRate email {mail.arrived - first_bad:.1f} s "
        f"(Prometheus alert firing after {timeline['prometheus_firing'] - first_bad:.1f} s); intervals: "
        f"scrape {INTERVALS.scrape}, evaluation {INTERVALS.evaluation}, for {TEST_FOR} (committed: "
        f"{alert_rules()['HighErrorRate']['for']}), group_wait {INTERVALS.group_wait}, group_interval "
        f"{INTERVALS.group_interval}; error ratio = rate(...[5m]) as committed, `errors` scenario at "
        f"{TRAFFIC_RATE:g} req/s with its default 30% bad requests after ~{MIXED_NOTE}")


def test_clean_traffic_resolves_high_error_rate(stack):
    clean = stack.traffic("steady", CLEAN_RATE, "180s", seed=3)
    started = time.time()
    wait_for("HighErrorRate to stop firing under clean traffic", lambda: not stack.prom.firing("HighErrorRate"),
             RESOLVE_TIMEOUT, interval=1, detail=lambda: stack.diagnostics())
    expect_delivered(stack, "HighErrorRate", "resolved", firing_labels["HighErrorRate"])
    clean.stop()
    SUMMARY.append(f"HighErrorRate resolved notifications {time.time() - started:.1f} s after clean traffic "
                   f"(`steady`, {CLEAN_RATE:g} req/s) started")


def test_slow_predictions_fire_high_latency_p99(stack):
    # The fault: the API restarted with its test-only setting testing.predict_delay_ms, which makes
    # every /predict wait that long (no request can ask for it). Slow traffic runs only until the
    # alert fires, so that fast traffic can bring the 5-minute p99 back down in a bounded time.
    stack.procs["inference-api"].stop()
    stack.start_api({"APP_TESTING__PREDICT_DELAY_MS": str(SLOW_PREDICT_MS)})
    started = time.time()
    slow = stack.traffic("steady", SLOW_RATE, "180s", seed=6)
    try:
        firing = wait_firing(stack, "HighLatencyP99", timeout=120)
    finally:
        slow.stop()
    fired_after = time.time() - started
    SUMMARY.append(grafana_condition_holds(stack, "HighLatencyP99"))
    firing_labels["HighLatencyP99"] = firing[0]["labels"]
    mail, _ = expect_delivered(stack, "HighLatencyP99", "firing", firing[0]["labels"])
    SUMMARY.append(f"HighLatencyP99: API restarted with APP_TESTING__PREDICT_DELAY_MS={SLOW_PREDICT_MS} (test-only "
                   f"setting), `steady` at {SLOW_RATE:g} req/s; Prometheus alert firing after {fired_after:.1f} s, "
                   f"email + Slack {mail.arrived - started:.1f} s after the slow traffic started")


def test_fast_predictions_resolve_high_latency_p99(stack):
    stack.procs["inference-api"].stop()
    stack.start_api()
    started = time.time()
    fast = stack.traffic("steady", DILUTE_RATE, "330s", seed=7)
    try:
        # The 5-minute p99 drops below 0.5 s once the slow requests are under 1% of the window,
        # and at the latest when they leave it.
        wait_for("HighLatencyP99 to stop firing under fast traffic", lambda: not stack.prom.firing("HighLatencyP99"),
                 330, interval=1, detail=lambda: stack.diagnostics())
        expect_delivered(stack, "HighLatencyP99", "resolved", firing_labels["HighLatencyP99"])
    finally:
        fast.stop()
    SUMMARY.append(f"HighLatencyP99 resolved notifications {time.time() - started:.1f} s after fast traffic "
                   f"(`steady`, {DILUTE_RATE:g} req/s) started on the API without the delay")


def memory_ratio(stack) -> tuple[float, float, float]:
    """(used ratio as recorded, total bytes, available bytes) of the machine, from Prometheus."""
    def one(q):
        result = stack.prom.query(q)
        assert len(result) == 1, f"{q}: {result}"
        return float(result[0]["value"][1])
    return (one("instance:system_memory_used:ratio"), one("system_memory_total_bytes"),
            one("system_memory_available_bytes"))


def test_memory_pressure_fires_high_memory_usage_and_resolves(stack):
    # Filling 80% of the machine's memory is not reasonable in a test. Instead the test lowers the
    # threshold in ITS OWN copy of the rules (the committed 0.8 is untouched and Grafana's copy is
    # not evaluated here) to halfway between the machine's usage now and its usage with an
    # allocation of 8% of memory, then makes that allocation for real (a child process that
    # writes every page), and frees it.
    rule = alert_rules()["HighMemoryUsage"]
    ratio, total, available = memory_ratio(stack)
    alloc = int(min(0.08 * total, 0.5 * available))
    threshold = round(ratio + alloc / total / 2, 4)
    committed = harness.rewrite_alert_threshold(stack.rendered, "HighMemoryUsage", threshold)
    note = (f"HighMemoryUsage: threshold LOWERED in the test's copy of the rules from {committed} to {threshold:g} "
            f"(machine at {ratio:.4f} used; allocating {alloc / 2**30:.2f} GiB = {alloc / total:.1%} of memory)")
    print(note, flush=True)
    SUMMARY.append(note)
    stack.reload_prometheus()
    wait_for("Prometheus to load the lowered HighMemoryUsage threshold",
             lambda: f"> {threshold:g}" in (stack.prom.alert_query("HighMemoryUsage") or ""), 30,
             detail=lambda: stack.logs(["prometheus"]))
    assert not stack.prom.firing("HighMemoryUsage"), "HighMemoryUsage fires before the allocation"
    hog = stack.start("memory-hog", [harness.sys_python(), "-c",
                                     f"import time; b = b'\\x01' * {alloc}; print('allocated', flush=True); "
                                     "time.sleep(600)"])
    started = time.time()
    try:
        firing = wait_firing(stack, "HighMemoryUsage", timeout=90)
        expect_delivered(stack, "HighMemoryUsage", "firing", firing[0]["labels"])
        fired_after = time.time() - started
    finally:
        hog.stop()
    freed = time.time()
    wait_for("HighMemoryUsage to stop firing after the memory is freed", lambda: not stack.prom.firing("HighMemoryUsage"),
             90, interval=1, detail=lambda: stack.diagnostics())
    expect_delivered(stack, "HighMemoryUsage", "resolved", firing[0]["labels"])
    SUMMARY.append(f"HighMemoryUsage notified (email + Slack) {fired_after:.1f} s after the allocation, resolved "
                   f"{time.time() - freed:.1f} s after it was freed (rule `for` {TEST_FOR}, committed {rule['for']})")
    harness.rewrite_alert_threshold(stack.rendered, "HighMemoryUsage", float(committed))
    stack.reload_prometheus()


def test_inference_api_down_is_delivered(stack):
    stack.procs["inference-api"].stop()
    firing = wait_firing(stack, "InferenceApiDown")
    expect_delivered(stack, "InferenceApiDown", "firing", firing[0]["labels"])


def test_stale_model_fires_model_stale(stack):
    # The manifest's own limit: a model allowed 1 day, trained 2 days ago, is stale (under the
    # default 30 days it would not be). The exporter reads the edited manifest at its next scrape.
    trained = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    manifest = stack.bundle / "model.json"
    doc = json.loads(manifest.read_text())
    doc["trained_at"] = trained.strftime("%Y-%m-%dT%H:%M:%SZ")
    doc["max_age_days"] = 1
    manifest.write_text(json.dumps(doc, indent=2))
    firing = wait_firing(stack, "ModelStale")
    assert "more than the 1d 0h 0m 0s its manifest allows" in firing[0]["annotations"]["description"], firing
    # ModelStale is routed to email only.
    expect_delivered(stack, "ModelStale", "firing", firing[0]["labels"])


def test_drift_fires_data_drift_detected(stack):
    # Issue 7: the drift scenario fires DataDriftDetected and it reaches email AND Slack (the
    # committed route sends the model-quality warnings to both).
    stack.start_api()
    drift = stack.traffic("drift", CLEAN_RATE, "180s", seed=4)
    firing = wait_firing(stack, "DataDriftDetected", timeout=120)
    expect_delivered(stack, "DataDriftDetected", "firing", firing[0]["labels"])
    drift.stop()


def served_version(stack) -> str | None:
    """The version the API's /ready names, or None while it is not ready."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.ports.api}/ready", timeout=2) as r:
            return json.load(r)["version"]
    except OSError:
        return None


def test_a_new_version_resolves_model_stale_without_a_restart(stack):
    # The loop RUNBOOK's ModelStale entry describes: write a freshly trained version into the
    # model's folder; the API serves it and the exporter reports it, no service is restarted,
    # and ModelStale resolves. (The same model file under a new version and training time: what
    # scripts/train_model.py --trained-at now --version 1.0.1 writes, without its scikit-learn.)
    firing = wait_firing(stack, "ModelStale")
    pids = {name: stack.procs[name].pid for name in ("inference-api", "exporter")}
    assert served_version(stack) == "1.0.0"
    dropped = time.time()
    harness.write_version(stack.bundle, "1.0.1")
    wait_for("the API to serve version 1.0.1", lambda: served_version(stack) == "1.0.1", 30, interval=0.2,
             detail=lambda: stack.diagnostics())
    served_after = time.time() - dropped
    wait_for("ModelStale to stop firing", lambda: not stack.prom.firing("ModelStale"), RESOLVE_TIMEOUT,
             interval=1, detail=lambda: stack.diagnostics())
    expect_delivered(stack, "ModelStale", "resolved", firing[0]["labels"])
    assert {name: stack.procs[name].pid for name in pids} == pids, "a service was restarted"
    assert all(stack.procs[name].running() for name in pids)
    SUMMARY.append(f"ModelStale resolved {time.time() - dropped:.1f} s after version 1.0.1 was written into the "
                   f"model's folder (served {served_after:.1f} s after), no service restarted")
