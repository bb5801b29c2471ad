"""Steps 2-4 of issue 6 (and the drift step of issue 7): faults in traffic and in the stack fire
the repository's alerts, and Alertmanager delivers them, once, by email and to the Slack webhook.

The tests run in file order and build on each other (errors -> resolve -> API down -> stale model).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import harness
import yaml
from conftest import INTERVALS, SUMMARY, TEST_FOR
from harness import wait_for

TRAFFIC_RATE = 20.0
CLEAN_RATE = 100.0
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


def expect_delivered(stack, alert: str, status: str, labels: dict, slack: bool = True):
    """Waits for the `status` notification of `alert`: one email (and one Slack message when
    `slack`), each naming the alert, with its summary and runbook link. Returns them."""
    rule = alert_rules()[alert]
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

    # The Grafana-managed copy: its Prometheus query, reduced (last) and compared with its
    # threshold, evaluated against the same Prometheus while the Prometheus alert fires.
    rule = next(r for g in yaml.safe_load(GRAFANA_RULES.read_text())["groups"] for r in g["rules"]
                if r["title"] == "HighErrorRate")
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
        f"Grafana HighErrorRate: {query['model']['expr']} = {values}, expected {evaluator['type']} {evaluator['params'][0]}")

    firing_labels["HighErrorRate"] = firing[0]["labels"]
    mail, _ = expect_delivered(stack, "HighErrorRate", "firing", firing[0]["labels"])
    errors.stop()
    first_bad = first_bad_predict_after(stack.procs["inference-api"].tail(1_000_000), timeline["errors_started"])
    assert first_bad is not None, "no bad /predict request in the API log"
    timeline["first_bad_request"] = first_bad
    timeline["email"] = mail.arrived
    SUMMARY.append(f"Grafana HighErrorRate query {query['model']['expr']} = {values} (> {evaluator['params'][0]})")
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


def test_inference_api_down_is_delivered(stack):
    stack.procs["inference-api"].stop()
    firing = wait_firing(stack, "InferenceApiDown")
    expect_delivered(stack, "InferenceApiDown", "firing", firing[0]["labels"])


def test_stale_model_fires_model_stale(stack):
    rule = alert_rules()["ModelStale"]
    threshold = float(re.search(r">\s*([0-9.e+]+)\s*$", rule["expr"].strip()).group(1))
    trained = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=threshold + 7 * 86400)
    manifest = stack.bundle / "model.json"
    doc = json.loads(manifest.read_text())
    doc["trained_at"] = trained.strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest.write_text(json.dumps(doc, indent=2))
    firing = wait_firing(stack, "ModelStale")
    # ModelStale is a warning: routed to email only.
    expect_delivered(stack, "ModelStale", "firing", firing[0]["labels"], slack=rule["labels"]["severity"] == "critical")


def test_drift_fires_data_drift_detected(stack):
    # Issue 7: the drift scenario fires DataDriftDetected and it reaches email AND Slack (the
    # committed route sends the model-quality warnings to both).
    stack.start_api()
    drift = stack.traffic("drift", CLEAN_RATE, "180s", seed=4)
    firing = wait_firing(stack, "DataDriftDetected", timeout=120)
    expect_delivered(stack, "DataDriftDetected", "firing", firing[0]["labels"], slack=True)
    drift.stop()
