"""Step 1 of issue 6: with the `mixed` demo traffic running, every scrape target is up, every
PromQL expression of the dashboards, recording rules, Prometheus alerts and Grafana alert rules
parses and has data, and every metric name they use is one the services really expose.

Which expressions must return at least one series (the precise rule):
- recording rules: the expression, and the recorded series it writes;
- dashboard panel targets and variable queries: the expression with Grafana's macros and
  variables substituted the way scripts/monitoring/check.py does (`$__rate_interval` -> 1m,
  `$__interval` -> 15s, `$instance` -> the variable's allValue or `.*`);
- Grafana alert rules: their Prometheus query (refId A...);
- live-accuracy series need feedback labels: `mixed` labels a share of its predictions with
  their true class through /feedback, so those series have data from the generator itself;
- Prometheus alert rules: they must parse, but they fire only when something is wrong, so the
  part that must have data is the alert's `series_query` (the `<query>` of `<query> <op> <number>`,
  extracted by check.py); for alerts of another shape (`up == 0 or absent(up)`, `vector(1)`)
  every metric they select must have at least one series;
- dashboard annotations mark events (another model version served), so every metric they
  select must have at least one series.
"""

from __future__ import annotations

import json
import subprocess
import time

import harness
import pytest
import yaml
from conftest import SUMMARY
from harness import wait_for

MIXED_RATE = 20.0
# Bounded: the process stops itself after this even if the test hangs.
MIXED_DURATION = "120s"
# The expressions are polled until all have data; this is the most the `mixed` run may take.
DATA_TIMEOUT = 60.0
CHECK_PY = harness.ROOT / "scripts" / "monitoring" / "check.py"


def expressions() -> list[dict]:
    out = subprocess.run([harness.sys_python(), CHECK_PY, "exprs"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, f"check.py exprs failed:\n{out.stderr}"
    exprs = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert exprs, "check.py exprs printed no expression"
    return exprs


def where(e: dict) -> str:
    return f"{e['source']} {e['file']} {e.get('name') or e.get('panel')}" + (f" [{e['ref_id']}]" if e.get("ref_id") else "")


def must_have_data(e: dict) -> list[str]:
    """The queries that must return at least one series for expression `e` (see module doc)."""
    if e["source"] == "recording_rule":
        return [e["promql"], e["name"]]
    if e["source"] == "alert_rule" and e.get("series_query"):
        return [e["series_query"]]
    if e["source"] in ("alert_rule", "dashboard_annotation"):
        # Returns series only while its event happens: its inputs must exist.
        return [f"count({{__name__={json.dumps(m)}}})" for m in e.get("metrics") or []]
    return [e["promql"]]


@pytest.fixture(scope="module")
def mixed(stack):
    """`mixed` demo traffic (it also labels some predictions through /feedback)."""
    p = stack.traffic("mixed", MIXED_RATE, MIXED_DURATION, seed=1)
    yield p
    p.stop()


def test_every_scrape_target_is_up(stack, mixed):
    jobs_configured = {j["job_name"] for j in yaml.safe_load(stack.rendered.prometheus_config.read_text())["scrape_configs"]}

    def all_up():
        targets = stack.prom.targets()
        jobs = {t["labels"]["job"] for t in targets}
        return jobs == jobs_configured and all(t["health"] == "up" for t in targets)

    def detail():
        rows = [f"{t['labels']['job']} {t['scrapeUrl']} {t['health']} {t.get('lastError', '')}" for t in stack.prom.targets()]
        return "targets:\n  " + "\n  ".join(rows)

    wait_for(f"every scrape target up (jobs {sorted(jobs_configured)})", all_up, 30, detail=detail)
    SUMMARY.append(detail())


def test_every_expression_parses_and_returns_series(stack, mixed):
    exprs = expressions()
    # Parse: Prometheus rejects a bad query with 400 bad_data; no data is not an error here.
    bad = []
    for e in exprs:
        try:
            stack.prom.query(e["promql"])
        except ValueError as err:
            bad.append(f"{where(e)}: {err}\n    {e['promql']}")
    assert not bad, "expressions Prometheus cannot parse:\n" + "\n".join(bad)

    queries = {q: e for e in exprs for q in must_have_data(e)}
    started = time.monotonic()
    empty: dict[str, dict] = dict(queries)

    def all_have_data():
        for q in list(empty):
            if stack.prom.query(q):
                del empty[q]
        return not empty

    def detail():
        return f"{len(empty)} of {len(queries)} queries still return no series:\n" + "\n".join(
            f"  {where(e)}:\n    {q}" for q, e in empty.items())

    wait_for("every expression to return at least one series", all_have_data, DATA_TIMEOUT, interval=2, detail=detail)
    assert stack.prom.rule_health() == [], f"rules failing to evaluate: {stack.prom.rule_health()}"
    SUMMARY.append(f"{len(exprs)} expressions parsed; {len(queries)} queries returned series "
          f"{time.monotonic() - started:.1f}s into the check ({time.time() - mixed.started:.1f}s of `mixed` traffic)")


def test_metric_names_used_are_exposed_by_live_scrapes(stack, mixed):
    urls = [f"http://127.0.0.1:{port}/metrics" for port in (stack.ports.api, stack.ports.exporter, stack.ports.traffic)]
    names_file = stack.work / "exposed-names.txt"
    scraped = subprocess.run([harness.sys_python(), CHECK_PY, "scrape-names", *urls],
                             capture_output=True, text=True, check=False)
    assert scraped.returncode == 0, f"check.py scrape-names {urls} failed:\n{scraped.stderr}"
    names_file.write_text(scraped.stdout)
    assert len(scraped.stdout.splitlines()) > 20, f"suspiciously few names scraped:\n{scraped.stdout}"
    check = subprocess.run([harness.sys_python(), CHECK_PY, "names", names_file],
                           capture_output=True, text=True, check=False)
    SUMMARY.append("metric-name cross-check from live scrapes: " + check.stdout.strip())
    assert check.returncode == 0, f"metric names used but not exposed by {urls}:\n{check.stdout}{check.stderr}"
