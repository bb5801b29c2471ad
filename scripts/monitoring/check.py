#!/usr/bin/env python3
"""Structural checks of the modelwatch monitoring configuration, and PromQL extraction.

    check.py check            all structural checks below (exit 1 on any problem)
    check.py exprs            every PromQL expression of dashboards (panels, variables and
                              annotations), recording rules, alert rules and Grafana alert
                              rules, one JSON object per line, with its source
    check.py names FILE...    every metric name those expressions use is exposed: FILEs list the
                              metric names the services really expose (one per line: sample
                              names, or `family type` from `# TYPE` lines); recorded series
                              (names with ':') must be produced by the recording rules; prints
                              what is missing and exits 1 if any
    check.py scrape-names URL...
                              prints the names exposed by live /metrics endpoints in that format

`check` covers:
- dashboards: JSON, uid/title/schemaVersion, unique panel ids, complete non-overlapping gridPos
  on the 24-column grid, datasource uids that exist, a unit on every panel, an `instance`
  variable, annotation queries on a datasource that exists, no `${DS_...}` / `__inputs` import
  placeholders;
- Grafana alerting files: the fields Grafana requires (group orgId/name/folder/interval as a
  multiple of 10s; rule uid/title/condition/data; query refIds, datasource uids, expression
  references, relative time ranges, noData/execErr states, dashboard/panel links), contact
  points and the notification policy, no `$` in fields Grafana env-interpolates;
- Grafana rules vs Prometheus alerts: same query, operator, threshold, `for`, severity, runbook;
- prediction routes: every `route` matcher that names a prediction route (/predict, a V2
  .../infer) in rules, Grafana rules and dashboards is PREDICT_ROUTE_MATCHER of dashboards.py;
- Prometheus rules: recording names level:metric:operations, every alert with `for`,
  `severity`, `summary`, `description`, `runbook_url` pointing at a RUNBOOK.md heading, and the
  thresholds table in RUNBOOK.md equal to the rules; recorded series used anywhere are defined;
- wiring: every host:port in prometheus.yml, alertmanager.yml and the Grafana datasources is a
  docker-compose.yml service and one of its container ports; published ports bind 127.0.0.1;
  images pinned; depends_on targets exist; config bind mounts read-only.

Needs Python 3.9+ and PyYAML (pip install PyYAML==6.0.3).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from dashboards import PREDICT_ROUTE_MATCHER

ROOT = Path(os.environ.get("MODELWATCH_ROOT", Path(__file__).resolve().parents[2]))
PROM = ROOT / "prometheus"
PROM_CONFIG = PROM / "prometheus.yml"
AM_CONFIG = ROOT / "alertmanager" / "alertmanager.yml"
GRAFANA = ROOT / "grafana-provisioning"
DASHBOARDS = GRAFANA / "dashboards"
DATASOURCES = GRAFANA / "provisioning" / "datasources"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards"
ALERTING = GRAFANA / "provisioning" / "alerting"
COMPOSE = ROOT / "docker-compose.yml"
RUNBOOK = ROOT / "RUNBOOK.md"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
ORT_FETCH = ROOT / "scripts" / "fetch-onnxruntime.sh"
API_PRODUCTION_CONFIG = ROOT / "crates" / "inference-api" / "configuration" / "production.yaml"

EXPR_DATASOURCE = "__expr__"
GRAFANA_EXPR_TYPES = {"math", "reduce", "resample", "classic_conditions", "threshold", "sql"}
REDUCERS = {"last", "mean", "min", "max", "sum", "count", "median"}
EVALUATORS = {"gt": ">", "lt": "<", "within_range": None, "outside_range": None}
NO_DATA_STATES = {"NoData", "Alerting", "OK", "KeepLast"}
EXEC_ERR_STATES = {"Alerting", "Error", "OK", "KeepLast"}
SEVERITIES = {"critical", "warning", "none"}
RECORD_NAME = re.compile(r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z0-9_]+$")
RULE_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")

# Series Prometheus makes itself: never in a service's exposition.
SYNTHETIC_METRICS = {
    "up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added",
}

# Series from outside the stack, which only some deployments have; every expression that uses
# one keeps working without it. kube-state-metrics (Kubernetes, deploy/kubernetes): the
# Deployment's desired replicas, in job:up:expected_count (`... or` a compose fallback).
EXTERNAL_METRICS = {"kube_deployment_spec_replicas"}

PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan", "atan2",
}


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def load_yaml(path: Path):
    with path.open() as f:
        return yaml.safe_load(f)


def seconds(duration) -> int | None:
    """'1m30s' -> 90; None when not a plain h/m/s duration."""
    if not isinstance(duration, str) or not duration:
        return None
    m = DURATION.match(duration)
    if not m or not any(m.groups()):
        return None
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    return h * 3600 + mi * 60 + s


def normalize_expr(expr: str) -> str:
    return " ".join(expr.split())


# --------------------------------------------------------------------------- loading

def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load_dashboards() -> list[tuple[Path, dict]]:
    return [(p, json.loads(p.read_text())) for p in dashboard_files()]


def load_datasources() -> list[dict]:
    out = []
    for p in sorted(DATASOURCES.glob("*.y*ml")):
        out.extend(load_yaml(p).get("datasources") or [])
    return out


def alerting_docs() -> list[tuple[Path, dict]]:
    return [(p, load_yaml(p)) for p in sorted(ALERTING.glob("*.y*ml"))]


def grafana_rules() -> list[tuple[Path, dict, dict]]:
    out = []
    for path, doc in alerting_docs():
        for group in (doc or {}).get("groups") or []:
            for rule in group.get("rules") or []:
                out.append((path, group, rule))
    return out


def rule_files() -> list[Path]:
    """The rule files prometheus.yml loads (globs relative to its directory)."""
    files: list[Path] = []
    for pattern in load_yaml(PROM_CONFIG).get("rule_files") or []:
        files.extend(sorted(PROM.glob(pattern)))
    return files


def prom_rules(kind: str) -> list[tuple[Path, dict, dict]]:
    """Every rule of `kind` ("record" or "alert") in the files prometheus.yml loads."""
    out = []
    for path in rule_files():
        doc = load_yaml(path) or {}
        for g in doc.get("groups") or []:
            for r in g.get("rules") or []:
                if kind in r:
                    out.append((path, g, r))
    return out


def iter_panels(dashboard: dict):
    for panel in dashboard.get("panels") or []:
        yield panel
        for inner in panel.get("panels") or []:  # panels inside collapsed rows
            yield inner


# --------------------------------------------------------------------------- PromQL extraction

GRAFANA_SUBSTITUTIONS = [
    (re.compile(r"\$__rate_interval\b|\$\{__rate_interval\}"), "1m"),
    (re.compile(r"\$__interval\b|\$\{__interval\}"), "15s"),
    (re.compile(r"\$__range\b|\$\{__range\}"), "1h"),
]


def to_promql(expr: str, variables: dict[str, str]) -> str:
    """A dashboard expression with Grafana's macros and variables replaced, as Prometheus
    would receive it with the default selection (variables: name -> value)."""
    out = expr
    for pattern, value in GRAFANA_SUBSTITUTIONS:
        out = pattern.sub(value, out)
    for name, value in variables.items():
        out = re.sub(r"\$\{" + re.escape(name) + r"(?::[a-z]+)?\}|\$" + re.escape(name) + r"\b", value, out)
    return out


def variable_selector(query: str) -> str | None:
    """The PromQL inside a Grafana variable query: label_values(up{job="x"}, instance) ->
    up{job="x"}; query_result(expr) -> expr; metrics(...)/label_names() -> None."""
    m = re.match(r"^\s*label_values\s*\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", query, re.S)
    if m:
        return m.group(1).strip()
    m = re.match(r"^\s*query_result\s*\((.*)\)\s*$", query, re.S)
    if m:
        return m.group(1).strip()
    return None


def extract_expressions() -> list[dict]:
    """Every PromQL expression with where it comes from. `promql` is what Prometheus would be
    sent (Grafana macros/variables substituted); `expr` is the text as written."""
    out: list[dict] = []
    for path, group, rule in prom_rules("record"):
        out.append({"source": "recording_rule", "file": rel(path), "group": group["name"],
                    "name": rule.get("record"), "expr": rule["expr"].strip(),
                    "promql": rule["expr"].strip()})
    for path, group, rule in prom_rules("alert"):
        item = {"source": "alert_rule", "file": rel(path), "group": group["name"],
                "name": rule.get("alert"), "expr": rule["expr"].strip(),
                "promql": rule["expr"].strip()}
        # An alert returns nothing while all is well; `series_query` (for `<query> <op> <number>`
        # alerts) is the part that must return series whenever its inputs exist.
        m = ALERT_FORM.match(normalize_expr(rule["expr"]))
        if m:
            item["series_query"] = m.group("query")
        out.append(item)
    for path, dash in load_dashboards():
        variables = {}
        for var in (dash.get("templating") or {}).get("list") or []:
            if var.get("type") == "query":
                variables[var["name"]] = var.get("allValue") or ".*"
                q = var.get("query")
                q = q.get("query") if isinstance(q, dict) else q
                sel = variable_selector(q or "")
                if sel:
                    out.append({"source": "dashboard_variable", "file": rel(path),
                                "dashboard": dash.get("uid"), "name": var["name"],
                                "expr": q, "promql": to_promql(sel, variables)})
        for ann in (dash.get("annotations") or {}).get("list") or []:
            if ann.get("expr"):
                # Marks events: returns series only while one happens (not while all is well).
                out.append({"source": "dashboard_annotation", "file": rel(path),
                            "dashboard": dash.get("uid"), "name": ann.get("name"),
                            "expr": ann["expr"], "promql": to_promql(ann["expr"], variables)})
        for panel in iter_panels(dash):
            for t in panel.get("targets") or []:
                if "expr" not in t:
                    continue
                out.append({"source": "dashboard", "file": rel(path), "dashboard": dash.get("uid"),
                            "panel_id": panel.get("id"), "panel": panel.get("title"),
                            "ref_id": t.get("refId"), "expr": t["expr"],
                            "promql": to_promql(t["expr"], variables)})
    datasource_types = {d.get("uid"): d.get("type") for d in load_datasources()}
    for path, group, rule in grafana_rules():
        for q in rule.get("data") or []:
            if datasource_types.get(q.get("datasourceUid")) != "prometheus":
                continue
            expr = (q.get("model") or {}).get("expr")
            if expr:
                out.append({"source": "grafana_rule", "file": rel(path), "group": group.get("name"),
                            "name": rule.get("title"), "uid": rule.get("uid"),
                            "ref_id": q.get("refId"), "expr": expr.strip(), "promql": expr.strip()})
    return out


STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
BRACES = re.compile(r"\{[^{}]*\}")
BRACKETS = re.compile(r"\[[^\[\]]*\]")
LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
OFFSET = re.compile(r"\boffset\s+-?[0-9a-zA-Z_$]+")
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(promql: str) -> set[str]:
    """Metric names a PromQL expression selects (no parser needed for the subset used here:
    strings, label matchers, ranges, offsets and label lists are removed first; identifiers
    followed by '(' are functions or aggregations)."""
    s = STRING.sub('""', promql)
    s = BRACES.sub(" ", s)
    s = BRACKETS.sub(" ", s)
    s = OFFSET.sub(" ", s)
    s = LABEL_LIST.sub(" ", s)
    names = set()
    for m in IDENT.finditer(s):
        name = m.group(0)
        start, end = m.span()
        if start > 0 and (s[start - 1].isalnum() or s[start - 1] in "._$"):
            continue  # part of a number (1e3), a duration, or a $variable
        rest = s[end:].lstrip()
        if rest.startswith("("):
            continue  # function or aggregation
        if name.lower() in PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def recorded_names() -> set[str]:
    return {r["record"] for _, _, r in prom_rules("record")}


# --------------------------------------------------------------------------- checks

def check_dashboards(p: Problems) -> tuple[dict[str, set[int]], set[str]]:
    """Returns {dashboard uid: panel ids} and the provider folders."""
    datasource_uids = {d.get("uid") for d in load_datasources()} | {"-- Grafana --", "grafana"}
    panels_by_uid: dict[str, set[int]] = {}
    files = dashboard_files()
    if not files:
        p.add(rel(DASHBOARDS), "no dashboard JSON files")
    total_panels = 0
    for path in files:
        where = rel(path)
        text = path.read_text()
        if "${DS_" in text or "__inputs" in text:
            p.add(where, "contains an import placeholder (${DS_...} or __inputs): use the fixed datasource uid")
        try:
            dash = json.loads(text)
        except json.JSONDecodeError as e:
            p.add(where, f"invalid JSON: {e}")
            continue
        for key in ("uid", "title", "schemaVersion", "panels"):
            if key not in dash:
                p.add(where, f"missing {key!r}")
        uid = dash.get("uid", "")
        if uid in panels_by_uid:
            p.add(where, f"dashboard uid {uid!r} used twice")
        variables = (dash.get("templating") or {}).get("list") or []
        if not any(v.get("name") == "instance" for v in variables):
            p.add(where, "no `instance` template variable")
        for v in variables:
            ds = v.get("datasource")
            if isinstance(ds, dict) and ds.get("uid") not in datasource_uids:
                p.add(where, f"variable {v.get('name')}: unknown datasource uid {ds.get('uid')!r}")
        for ann in (dash.get("annotations") or {}).get("list") or []:
            ds = ann.get("datasource")
            if ann.get("expr") and (not isinstance(ds, dict) or ds.get("uid") not in datasource_uids):
                p.add(where, f"annotation {ann.get('name')!r}: unknown datasource {ds!r}")
        ids: set[int] = set()
        boxes = []
        for panel in iter_panels(dash):
            pid = panel.get("id")
            pw = f"{where} panel {pid} ({panel.get('title')!r})"
            if not isinstance(pid, int):
                p.add(pw, "panel id missing or not an integer")
            elif pid in ids:
                p.add(pw, "duplicate panel id")
            ids.add(pid)
            grid = panel.get("gridPos") or {}
            if not all(isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")):
                p.add(pw, f"gridPos needs integer x, y, w, h: {grid}")
            else:
                if not (0 <= grid["x"] and 1 <= grid["w"] and grid["x"] + grid["w"] <= 24
                        and grid["y"] >= 0 and grid["h"] >= 1):
                    p.add(pw, f"gridPos outside the 24-column grid: {grid}")
                for other_id, og in boxes:
                    if (grid["x"] < og["x"] + og["w"] and og["x"] < grid["x"] + grid["w"]
                            and grid["y"] < og["y"] + og["h"] and og["y"] < grid["y"] + grid["h"]):
                        p.add(pw, f"gridPos overlaps panel {other_id}")
                boxes.append((pid, grid))
            if panel.get("type") == "row":
                continue
            total_panels += 1
            ds = panel.get("datasource")
            if not isinstance(ds, dict) or ds.get("uid") not in datasource_uids:
                p.add(pw, f"panel datasource must be a known uid, got {ds!r}")
            targets = panel.get("targets") or []
            if not targets:
                p.add(pw, "no targets")
            ref_ids = set()
            for t in targets:
                tds = t.get("datasource")
                if tds is not None and (not isinstance(tds, dict) or tds.get("uid") not in datasource_uids):
                    p.add(pw, f"target {t.get('refId')}: unknown datasource {tds!r}")
                if t.get("refId") in ref_ids:
                    p.add(pw, f"duplicate refId {t.get('refId')}")
                ref_ids.add(t.get("refId"))
                if not (t.get("expr") or "").strip():
                    p.add(pw, f"target {t.get('refId')}: empty expr")
            unit = ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
            if not unit:
                p.add(pw, "no unit (fieldConfig.defaults.unit)")
        panels_by_uid[uid] = ids
    if total_panels < 12:
        p.add(rel(DASHBOARDS), f"only {total_panels} panels in all dashboards (want >= 12)")
    folders = set()
    for path in sorted(DASHBOARD_PROVIDERS.glob("*.y*ml")):
        doc = load_yaml(path)
        if doc.get("apiVersion") != 1:
            p.add(rel(path), "apiVersion must be 1")
        for prov in doc.get("providers") or []:
            if prov.get("type") != "file" or not (prov.get("options") or {}).get("path"):
                p.add(rel(path), f"provider {prov.get('name')!r}: needs type file and options.path")
            folders.add(prov.get("folder") or "")
    if not folders:
        p.add(rel(DASHBOARD_PROVIDERS), "no dashboard provider")
    return panels_by_uid, folders


def check_grafana_alerting(p: Problems, panels_by_uid: dict[str, set[int]], dashboard_folders: set[str]) -> None:
    datasources = {d.get("uid"): d for d in load_datasources()}
    for d in datasources.values():
        for key in ("name", "uid", "type", "url"):
            if not d.get(key):
                p.add(rel(DATASOURCES), f"datasource {d.get('name')!r}: missing {key}")
    contact_points: set[str] = set()
    has_policy = False
    titles: dict[tuple, str] = {}
    uids: set[str] = set()
    docs = alerting_docs()
    if not docs:
        p.add(rel(ALERTING), "no alerting provisioning files")
    for path, doc in docs:
        where = rel(path)
        if not isinstance(doc, dict) or doc.get("apiVersion") != 1:
            p.add(where, "apiVersion must be 1")
            continue
        for cp in doc.get("contactPoints") or []:
            if not cp.get("name"):
                p.add(where, "contact point without name")
            contact_points.add(cp.get("name"))
            for r in cp.get("receivers") or []:
                if not r.get("uid") or not r.get("type") or not isinstance(r.get("settings"), dict):
                    p.add(where, f"contact point {cp.get('name')!r}: receiver needs uid, type, settings")
                if r.get("type") == "prometheus-alertmanager" and not r["settings"].get("url"):
                    p.add(where, f"contact point {cp.get('name')!r}: prometheus-alertmanager needs settings.url")
                if "$" in json.dumps(r.get("settings")):
                    p.add(where, f"contact point {cp.get('name')!r}: settings are env-interpolated, '$' must be '$$'")
        for policy in doc.get("policies") or []:
            has_policy = True
            if not policy.get("receiver"):
                p.add(where, "policy without receiver")
        for group in doc.get("groups") or []:
            gw = f"{where} group {group.get('name')!r}"
            for key in ("name", "folder", "interval"):
                if not group.get(key):
                    p.add(gw, f"missing {key}")
            interval = seconds(group.get("interval"))
            if interval is None or interval % 10:
                p.add(gw, f"interval {group.get('interval')!r} must be a multiple of 10s")
            if group.get("folder") in dashboard_folders:
                p.add(gw, f"folder {group.get('folder')!r} is the dashboards' folder; alert rules get their own")
            if "orgId" in group and not isinstance(group["orgId"], int):
                p.add(gw, "orgId must be an integer")
            for rule in group.get("rules") or []:
                rw = f"{gw} rule {rule.get('uid')!r}"
                for key in ("uid", "title", "condition", "data"):
                    if not rule.get(key):
                        p.add(rw, f"missing {key}")
                uid = rule.get("uid") or ""
                if not RULE_UID.match(uid):
                    p.add(rw, "uid must be 1-40 letters, digits, '-' or '_'")
                if uid in uids:
                    p.add(rw, "duplicate uid")
                uids.add(uid)
                key = (group.get("folder"), rule.get("title"))
                if key in titles:
                    p.add(rw, f"title {rule.get('title')!r} not unique in folder")
                titles[key] = uid
                if "$" in str(rule.get("title")) or "$" in json.dumps(rule.get("labels") or {}):
                    p.add(rw, "title/labels are env-interpolated by Grafana: no '$' there")
                if rule.get("noDataState", "NoData") not in NO_DATA_STATES:
                    p.add(rw, f"noDataState {rule.get('noDataState')!r} not in {sorted(NO_DATA_STATES)}")
                if rule.get("execErrState", "Alerting") not in EXEC_ERR_STATES:
                    p.add(rw, f"execErrState {rule.get('execErrState')!r} not in {sorted(EXEC_ERR_STATES)}")
                if "for" in rule and seconds(rule["for"]) is None:
                    p.add(rw, f"for {rule['for']!r} is not a duration")
                for k in ("labels", "annotations"):
                    if not isinstance(rule.get(k, {}), dict) or not all(
                            isinstance(v, str) for v in (rule.get(k) or {}).values()):
                        p.add(rw, f"{k} must map strings to strings")
                refs = [q.get("refId") for q in rule.get("data") or []]
                if len(refs) != len(set(refs)):
                    p.add(rw, "duplicate refId in data")
                if rule.get("condition") not in refs:
                    p.add(rw, f"condition {rule.get('condition')!r} is not a refId of data")
                for q in rule.get("data") or []:
                    qw = f"{rw} data {q.get('refId')!r}"
                    model = q.get("model")
                    if not q.get("refId") or not q.get("datasourceUid") or not isinstance(model, dict):
                        p.add(qw, "needs refId, datasourceUid and model")
                        continue
                    if model.get("refId", q["refId"]) != q["refId"]:
                        p.add(qw, "model.refId differs from refId")
                    if q["datasourceUid"] == EXPR_DATASOURCE:
                        t = model.get("type")
                        if t not in GRAFANA_EXPR_TYPES:
                            p.add(qw, f"expression type {t!r} unknown")
                        if t in ("reduce", "threshold", "resample") and model.get("expression") not in refs:
                            p.add(qw, f"expression {model.get('expression')!r} is not a refId")
                        if t == "reduce" and model.get("reducer") not in REDUCERS:
                            p.add(qw, f"reducer {model.get('reducer')!r} unknown")
                        if t == "math":
                            for ref in re.findall(r"\$\{?([A-Za-z0-9_]+)", model.get("expression") or ""):
                                if ref not in refs:
                                    p.add(qw, f"math refers to unknown ${ref}")
                        if t == "threshold":
                            conds = model.get("conditions") or []
                            ev = (conds[0].get("evaluator") if conds else None) or {}
                            if ev.get("type") not in EVALUATORS or not isinstance(ev.get("params"), list) \
                                    or not all(isinstance(x, (int, float)) for x in ev["params"]):
                                p.add(qw, f"threshold evaluator invalid: {ev}")
                    else:
                        if q["datasourceUid"] not in datasources:
                            p.add(qw, f"datasourceUid {q['datasourceUid']!r} is not a provisioned datasource")
                        rtr = q.get("relativeTimeRange") or {}
                        if not isinstance(rtr.get("from"), int) or not isinstance(rtr.get("to"), int) \
                                or rtr["from"] <= rtr["to"]:
                            p.add(qw, f"relativeTimeRange needs integer from > to (seconds ago): {rtr}")
                        if not (model.get("expr") or "").strip():
                            p.add(qw, "datasource query without expr")
                dash_uid, panel_id = rule.get("dashboardUid"), rule.get("panelId")
                if (dash_uid is None) != (panel_id is None):
                    p.add(rw, "dashboardUid and panelId go together")
                elif dash_uid is not None:
                    if dash_uid not in panels_by_uid:
                        p.add(rw, f"dashboardUid {dash_uid!r} is not a provisioned dashboard")
                    elif panel_id not in panels_by_uid[dash_uid]:
                        p.add(rw, f"panelId {panel_id} is not a panel of {dash_uid}")
                else:
                    p.add(rw, "not linked to a dashboard panel (dashboardUid/panelId)")
                if (rule.get("labels") or {}).get("source") != "grafana":
                    p.add(rw, "label source=grafana missing (Alertmanager inhibits Grafana copies by it)")
    if not has_policy:
        p.add(rel(ALERTING), "no notification policy")
    for path, doc in docs:
        for policy in (doc or {}).get("policies") or []:
            stack = [policy]
            while stack:
                node = stack.pop()
                if node.get("receiver") and node["receiver"] not in contact_points:
                    p.add(rel(path), f"policy receiver {node['receiver']!r} is not a contact point")
                stack.extend(node.get("routes") or [])
    if not any(r.get("type") == "prometheus-alertmanager"
               for _, doc in docs for cp in (doc or {}).get("contactPoints") or []
               for r in cp.get("receivers") or []):
        p.add(rel(ALERTING), "no prometheus-alertmanager contact point")


ALERT_FORM = re.compile(r"^(?P<query>.+?)\s*(?P<op>==|!=|>=|<=|>|<)\s*(?P<threshold>-?[0-9.eE+-]+)$", re.S)


def check_grafana_vs_prometheus(p: Problems) -> None:
    alerts = {r["alert"]: r for _, _, r in prom_rules("alert")}
    ops = {"gt": ">", "lt": "<"}
    for path, group, rule in grafana_rules():
        rw = f"{rel(path)} rule {rule.get('uid')!r}"
        prom = alerts.get(rule.get("title"))
        if prom is None:
            p.add(rw, f"no Prometheus alert named {rule.get('title')!r}")
            continue
        m = ALERT_FORM.match(normalize_expr(prom["expr"]))
        if not m:
            p.add(rw, f"Prometheus expr of {prom['alert']} is not '<query> <op> <number>'")
            continue
        data = {q.get("refId"): q for q in rule.get("data") or []}
        queries = [q for q in data.values() if q.get("datasourceUid") != EXPR_DATASOURCE]
        thresholds = [q for q in data.values() if (q.get("model") or {}).get("type") == "threshold"]
        if len(queries) != 1 or len(thresholds) != 1:
            p.add(rw, "expected one datasource query and one threshold expression")
            continue
        g_query = normalize_expr(queries[0]["model"].get("expr", ""))
        if g_query != normalize_expr(m.group("query")):
            p.add(rw, f"query {g_query!r} != Prometheus {m.group('query')!r}")
        ev = thresholds[0]["model"]["conditions"][0]["evaluator"]
        if ops.get(ev.get("type")) != m.group("op"):
            p.add(rw, f"operator {ev.get('type')} != Prometheus {m.group('op')}")
        if [float(x) for x in ev.get("params", [])][:1] != [float(m.group("threshold"))]:
            p.add(rw, f"threshold {ev.get('params')} != Prometheus {m.group('threshold')}")
        if seconds(rule.get("for", "0s")) != seconds(prom.get("for", "0s")):
            p.add(rw, f"for {rule.get('for')} != Prometheus {prom.get('for')}")
        for label in ("severity",):
            if (rule.get("labels") or {}).get(label) != (prom.get("labels") or {}).get(label):
                p.add(rw, f"label {label} differs from Prometheus")
        if (rule.get("annotations") or {}).get("runbook_url") != (prom.get("annotations") or {}).get("runbook_url"):
            p.add(rw, "runbook_url differs from Prometheus")
        # The threshold step must decide, and read the reduced query.
        if rule.get("condition") != thresholds[0]["refId"]:
            p.add(rw, "condition must be the threshold step")


ROUTE_MATCHER = re.compile(r'\broute\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"')


def check_prediction_routes(p: Problems) -> None:
    """Every `route` label matcher that names a prediction route (its value mentions `predict`
    or `infer`) is the one matcher of all prediction routes, PREDICT_ROUTE_MATCHER
    (scripts/monitoring/dashboards.py): an alert, recording rule or panel left on
    route="/predict" would miss the V2 routes."""
    for e in extract_expressions():
        for m in ROUTE_MATCHER.finditer(e["expr"]):
            if not re.search(r"predict|infer", m.group("value")):
                continue
            found = f'route{m.group("op")}"{m.group("value")}"'
            if found != PREDICT_ROUTE_MATCHER:
                where = f"{e['file']} {e.get('name') or e.get('panel')}" + (
                    f" [{e['ref_id']}]" if e.get("ref_id") else "")
                p.add(where, f"route matcher {found} is not the prediction routes' {PREDICT_ROUTE_MATCHER} "
                             "(scripts/monitoring/dashboards.py PREDICT_ROUTES)")


def runbook_anchors() -> set[str]:
    anchors = set()
    for line in RUNBOOK.read_text().splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def thresholds_table() -> dict[str, dict]:
    """The RUNBOOK.md thresholds table: | Alert | Expression | For | Severity | ... |"""
    rows = {}
    for line in RUNBOOK.read_text().splitlines():
        # Cells split at unescaped pipes: a `\|` (in an expression's regex) stays in its cell.
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))] if line.startswith("|") else []
        if len(cells) >= 4 and cells[0].startswith("[") and "`" in cells[1]:
            name = re.match(r"\[([^\]]+)\]", cells[0]).group(1)
            expr = cells[1].strip().strip("`").replace("\\|", "|")
            rows[name] = {"expr": expr, "for": cells[2].strip("` "), "severity": cells[3].strip("` "),
                          "notified": cells[4] if len(cells) > 4 else ""}
    return rows


# What the "Notified by" column of the RUNBOOK.md thresholds table says for each receiver of
# alertmanager/alertmanager.yml.
RECEIVER_WORDS = {"email-and-slack": "email + Slack", "email": "email", "null": "nobody"}


def check_routing_table(p: Problems) -> None:
    """The "Notified by" column of the thresholds table is where Alertmanager routes each alert
    (`amtool config routes test` with the alert's name and severity), for the Prometheus alert
    and, for a Grafana-managed copy, with source="grafana" too."""
    amtool = shutil.which("amtool")
    if amtool is None:
        p.add(rel(AM_CONFIG), "amtool not found: cannot check the routing column of RUNBOOK.md")
        return
    where = f"{rel(RUNBOOK)} thresholds table"
    grafana_titles = {rule.get("title") for _, _, rule in grafana_rules()}
    for name, row in thresholds_table().items():
        label_sets = [[f"alertname={name}", f"severity={row['severity']}"]]
        if name in grafana_titles:
            label_sets.append(label_sets[0] + ["source=grafana"])
        for labels in label_sets:
            out = subprocess.run([amtool, "config", "routes", "test", f"--config.file={AM_CONFIG}", *labels],
                                 capture_output=True, text=True)
            receiver = out.stdout.strip()
            words = RECEIVER_WORDS.get(receiver)
            if words is None:
                p.add(where, f"{name}: {' '.join(labels)} routes to {receiver!r} {out.stderr.strip()}")
            elif not row["notified"].startswith(words) or (words == "email" and "Slack" in row["notified"]):
                p.add(where, f"{name}: 'Notified by' says {row['notified']!r}, Alertmanager routes "
                             f"{' '.join(labels)} to {receiver} ({words})")


def check_prometheus_rules(p: Problems) -> None:
    records = set()
    if not rule_files():
        p.add(rel(PROM_CONFIG), "rule_files match no file")
    for path in rule_files():
        for group in (load_yaml(path) or {}).get("groups") or []:
            if "interval" in group:
                p.add(rel(path), f"group {group['name']}: no per-group interval (tests rewrite the global one)")
    for path, group, rule in prom_rules("record"):
        name = rule.get("record")
        if not name or not RECORD_NAME.match(name):
            p.add(rel(path), f"recording rule {name!r} is not named level:metric:operations")
        if name in records:
            p.add(rel(path), f"recording rule {name!r} defined twice")
        records.add(name)
    anchors = runbook_anchors()
    table = thresholds_table()
    names = set()
    for path, group, rule in prom_rules("alert"):
        name = rule.get("alert")
        aw = f"{rel(path)} alert {name}"
        if name in names:
            p.add(aw, "alert name defined twice")
        names.add(name)
        if "for" not in rule:
            p.add(aw, "missing for")
        sev = (rule.get("labels") or {}).get("severity")
        if sev not in SEVERITIES:
            p.add(aw, f"severity {sev!r} not in {sorted(SEVERITIES)}")
        ann = rule.get("annotations") or {}
        for key in ("summary", "description", "runbook_url"):
            if not ann.get(key):
                p.add(aw, f"missing annotation {key}")
        anchor = (ann.get("runbook_url") or "").partition("#")[2]
        if not ann.get("runbook_url", "").startswith("RUNBOOK.md#") or anchor not in anchors:
            p.add(aw, f"runbook_url {ann.get('runbook_url')!r} is not a RUNBOOK.md heading anchor")
        row = table.get(name)
        if row is None:
            p.add(f"{rel(RUNBOOK)} thresholds table", f"no row for {name}")
            continue
        if normalize_expr(row["expr"]) != normalize_expr(rule["expr"]):
            p.add(f"{rel(RUNBOOK)} thresholds table", f"{name}: expression {row['expr']!r} != rule {normalize_expr(rule['expr'])!r}")
        if row["for"] != rule.get("for"):
            p.add(f"{rel(RUNBOOK)} thresholds table", f"{name}: for {row['for']!r} != rule {rule.get('for')!r}")
        if row["severity"] != sev:
            p.add(f"{rel(RUNBOOK)} thresholds table", f"{name}: severity {row['severity']!r} != rule {sev!r}")
    for extra in set(table) - names:
        p.add(f"{rel(RUNBOOK)} thresholds table", f"row {extra} has no alert rule")
    # Every rule has promtool unit tests: each recorded series is asserted by a
    # promql_expr_test, each alert has a case where it fires and (unless it always fires,
    # severity none) one where it stays silent.
    tested_records: set[str] = set()
    fires: set[str] = set()
    silent: set[str] = set()
    for test_file in sorted((PROM / "tests").glob("*.yml")):
        for group in (load_yaml(test_file) or {}).get("tests") or []:
            if "interval" not in group:
                p.add(rel(test_file), f"test group {group.get('name')!r} without interval (promtool 2.42 gets it wrong)")
            for t in group.get("promql_expr_test") or []:
                tested_records |= metric_names(t.get("expr", ""))
            for t in group.get("alert_rule_test") or []:
                (fires if t.get("exp_alerts") else silent).add(t.get("alertname"))
    for name in sorted(records - tested_records):
        p.add(f"{rel(PROM)}/tests", f"recording rule {name} has no promql_expr_test")
    for path, group, rule in prom_rules("alert"):
        name = rule["alert"]
        if name not in fires:
            p.add(f"{rel(PROM)}/tests", f"alert {name} has no test where it fires")
        if name not in silent and (rule.get("labels") or {}).get("severity") != "none":
            p.add(f"{rel(PROM)}/tests", f"alert {name} has no test where it stays silent")
    # Every recorded series used anywhere is defined.
    for e in extract_expressions():
        for n in metric_names(e["promql"]):
            if ":" in n and n not in records:
                p.add(f"{e['file']} {e.get('name') or e.get('panel')}", f"recorded series {n} is not defined")


def interpolate(value: str) -> str:
    """Compose-style ${VAR:-default} / ${VAR-default} / ${VAR} with the defaults only, so the
    check does not depend on the caller's environment."""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", value)


def compose_ports(service: dict) -> tuple[set[int], list[str]]:
    """Container ports of a service (published or exposed) and its host bindings."""
    ports, bindings = set(), []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
            bindings.append(str(entry.get("host_ip", "")))
            continue
        text = interpolate(str(entry)).split("/")[0]
        parts = text.rsplit(":", 2)
        ports.add(int(parts[-1]))
        bindings.append(parts[0] if len(parts) == 3 else "")
    for entry in service.get("expose") or []:
        ports.add(int(str(entry).split("/")[0]))
    return ports, bindings


def check_wiring(p: Problems) -> None:
    compose = load_yaml(COMPOSE)
    services = compose.get("services") or {}
    cw = rel(COMPOSE)
    service_ports = {}
    for name, svc in services.items():
        ports, bindings = compose_ports(svc)
        service_ports[name] = ports
        for b in bindings:
            if b != "127.0.0.1":
                p.add(cw, f"service {name}: published port bound to {b or 'all interfaces'}, want 127.0.0.1")
        image = svc.get("image", "")
        if "build" not in svc:
            tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
            if not tag or tag == "latest":
                p.add(cw, f"service {name}: image {image!r} is not pinned to a version tag")
        if "healthcheck" not in svc:
            p.add(cw, f"service {name}: no healthcheck")
        for dep, cond in (svc.get("depends_on") or {}).items() if isinstance(svc.get("depends_on"), dict) else []:
            if dep not in services:
                p.add(cw, f"service {name}: depends_on unknown service {dep}")
            if (cond or {}).get("condition") == "service_healthy" and "healthcheck" not in services.get(dep, {}):
                p.add(cw, f"service {name}: waits for {dep} to be healthy, which has no healthcheck")
        for vol in svc.get("volumes") or []:
            text = vol if isinstance(vol, str) else ""
            if text.startswith("./") and not re.search(r":ro(,|$)", text):
                p.add(cw, f"service {name}: config mount {text!r} is not read-only")

    def expect(where: str, host: str, port: int) -> None:
        if host not in services:
            p.add(where, f"{host}:{port}: {host!r} is not a docker-compose.yml service")
        elif port not in service_ports[host]:
            p.add(where, f"{host}:{port}: service {host} has container ports {sorted(service_ports[host])}")

    prom = load_yaml(PROM_CONFIG)
    jobs = set()
    for job in prom.get("scrape_configs") or []:
        jw = f"{rel(PROM_CONFIG)} job {job.get('job_name')}"
        jobs.add(job.get("job_name"))
        for sc in job.get("static_configs") or []:
            for target in sc.get("targets") or []:
                host, _, port = target.rpartition(":")
                expect(jw, host, int(port))
        for dc in job.get("dns_sd_configs") or []:
            if dc.get("type") != "A" or "port" not in dc:
                p.add(jw, "dns_sd_configs must be type A with a port (compose DNS answers A records)")
            for host in dc.get("names") or []:
                expect(jw, host, int(dc.get("port", 0)))
    for wanted in ("inference-api", "exporter", "traffic-gen", "prometheus", "alertmanager"):
        if wanted not in jobs:
            p.add(rel(PROM_CONFIG), f"no scrape job {wanted!r}")
    for am in (prom.get("alerting") or {}).get("alertmanagers") or []:
        for sc in am.get("static_configs") or []:
            for target in sc.get("targets") or []:
                host, _, port = target.rpartition(":")
                expect(f"{rel(PROM_CONFIG)} alerting", host, int(port))
    am = load_yaml(AM_CONFIG)
    smarthost = (am.get("global") or {}).get("smtp_smarthost", "")
    if smarthost:
        host, _, port = smarthost.rpartition(":")
        expect(f"{rel(AM_CONFIG)} smtp_smarthost", host, int(port))
    secret_paths = {f"/run/secrets/{name}" for name in (compose.get("secrets") or {})}
    for key, value in (am.get("global") or {}).items():
        if key.endswith("_file") and value not in secret_paths:
            p.add(rel(AM_CONFIG), f"{key} {value!r} is not a compose secret path {sorted(secret_paths)}")
    for key in ("smtp_auth_password", "slack_api_url"):
        if key in (am.get("global") or {}):
            p.add(rel(AM_CONFIG), f"{key} inline: secrets come from *_file")
    url_re = re.compile(r"^https?://([^/:]+):(\d+)")
    for d in load_datasources():
        m = url_re.match(d.get("url", ""))
        if m:
            expect(f"{rel(DATASOURCES)} {d.get('name')}", m.group(1), int(m.group(2)))
    for path, doc in alerting_docs():
        for cp in (doc or {}).get("contactPoints") or []:
            for r in cp.get("receivers") or []:
                m = url_re.match((r.get("settings") or {}).get("url", ""))
                if m:
                    expect(f"{rel(path)} contact point {cp.get('name')}", m.group(1), int(m.group(2)))


def check_dockerfile(p: Problems) -> None:
    """Stages and targets of docker/Dockerfile against docker-compose.yml, the ONNX Runtime
    version of scripts/fetch-onnxruntime.sh and the API's production configuration."""
    where = rel(DOCKERFILE)
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M | re.I)
    for ref in re.findall(r"--from=(\S+)", text):
        if ref not in stages:
            p.add(where, f"COPY --from={ref}: no such stage")
    if "fetch-onnxruntime.sh" not in text:
        p.add(where, "does not fetch ONNX Runtime with scripts/fetch-onnxruntime.sh")
    runtime = text[text.find("AS runtime-base"):]
    if not re.search(r"^USER\s+(?!0\b|root\b)\S+", runtime, re.M):
        p.add(where, "runtime images do not switch to a non-root USER")
    if "APP_ENVIRONMENT=production" not in text:
        p.add(where, "runtime images do not set APP_ENVIRONMENT=production")
    services = load_yaml(COMPOSE).get("services") or {}
    for name, svc in services.items():
        build = svc.get("build")
        if isinstance(build, dict):
            if build.get("target") not in stages:
                p.add(rel(COMPOSE), f"service {name}: build target {build.get('target')!r} is not a Dockerfile stage")
            if (ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).resolve() != DOCKERFILE.resolve():
                p.add(rel(COMPOSE), f"service {name}: not built from docker/Dockerfile")
            if not any(
                    "healthcheck" in str(part)
                    for part in ((svc.get("healthcheck") or {}).get("test") or [])):
                p.add(rel(COMPOSE), f"service {name}: health check does not use the binary's healthcheck subcommand")
    m = re.search(r'^ORT_VERSION="([^"]+)"', ORT_FETCH.read_text(), re.M) if ORT_FETCH.exists() else None
    if m:
        lib = f"libonnxruntime.so.{m.group(1)}"
        if lib not in text:
            p.add(where, f"does not install {lib} (the version scripts/fetch-onnxruntime.sh pins)")
        if API_PRODUCTION_CONFIG.exists():
            wanted = ((load_yaml(API_PRODUCTION_CONFIG) or {}).get("model") or {}).get("onnxruntime_path")
            if wanted and not re.search(rf"\s{re.escape(wanted)}\s*$", text, re.M):
                p.add(where, f"does not put ONNX Runtime at {wanted} (inference-api production.yaml)")


def run_checks() -> int:
    p = Problems()
    panels_by_uid, folders = check_dashboards(p)
    print(f"checked: dashboards ({sum(len(v) for v in panels_by_uid.values())} panels incl. rows)")
    check_grafana_alerting(p, panels_by_uid, folders)
    print("checked: grafana alerting files")
    check_grafana_vs_prometheus(p)
    print("checked: grafana rules vs prometheus alerts")
    check_prometheus_rules(p)
    print("checked: prometheus rules, RUNBOOK.md anchors and thresholds table")
    check_prediction_routes(p)
    print("checked: one route matcher for the prediction routes everywhere")
    check_routing_table(p)
    print("checked: RUNBOOK.md routing column vs alertmanager.yml routes")
    check_wiring(p)
    print("checked: prometheus.yml, alertmanager.yml and datasources vs docker-compose.yml")
    check_dockerfile(p)
    print("checked: docker/Dockerfile stages vs compose build targets, ONNX Runtime path")
    exprs = extract_expressions()
    print(f"extracted: {len(exprs)} PromQL expressions")
    if p.items:
        print(f"\n{len(p.items)} problem(s):", file=sys.stderr)
        for item in p.items:
            print(f"  - {item}", file=sys.stderr)
        return 1
    print("monitoring structure: OK")
    return 0


# Which sample-name suffixes a family of each type has (OpenMetrics / Prometheus text).
SUFFIXES_BY_TYPE = {
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("_sum", "_count", "_created"),
    "counter": ("_total", "_created"),
    "info": ("_info",),
}


def read_exposed(files: list[str]) -> tuple[set[str], dict[str, str]]:
    """Names files: one `name` per line (sample names as scraped), or `name type` (a family
    from a `# TYPE` line). '#' lines are comments."""
    names: set[str] = set()
    types: dict[str, str] = {}
    for f in files:
        for line in Path(f).read_text().splitlines():
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            names.add(parts[0])
            if len(parts) > 1:
                types[parts[0]] = parts[1].lower()
    return names, types


def is_exposed(name: str, names: set[str], types: dict[str, str]) -> bool:
    """Exact sample name, or a sample of a family whose TYPE is known: `x_bucket` only for a
    histogram `x`, `x_total` only for a counter `x`, ... A bare family name without a type
    never vouches for suffixed names, so `system_cpu_count` is not taken for a `_count`."""
    if name in names:
        return True
    for base, kind in types.items():
        if name.startswith(base) and name[len(base):] in SUFFIXES_BY_TYPE.get(kind, ()):
            return True
    return False


def scrape_names(urls: list[str]) -> int:
    """Prints the sample names and `# TYPE` families of live /metrics endpoints, the input
    of `names`."""
    import urllib.request

    out: set[str] = set()
    for url in urls:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (loopback URLs)
            text = resp.read().decode()
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, family, kind = line.split(None, 3)
                out.add(f"{family} {kind}")
            elif line and not line.startswith("#"):
                out.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    for line in sorted(out):
        print(line)
    return 0


def run_names(files: list[str]) -> int:
    exposed, types = read_exposed(files)
    records = recorded_names()
    missing: dict[str, list[str]] = {}
    used: set[str] = set()
    for e in extract_expressions():
        where = f"{e['source']} {e['file']} {e.get('name') or e.get('panel')}" + (
            f" [{e['ref_id']}]" if e.get("ref_id") else "")
        for name in sorted(metric_names(e["promql"])):
            used.add(name)
            if ":" in name:
                ok = name in records
            else:
                ok = name in SYNTHETIC_METRICS or name in EXTERNAL_METRICS or is_exposed(name, exposed, types)
            if not ok:
                missing.setdefault(name, []).append(where)
    print(f"{len(used)} metric names used, {len(exposed)} exposed names read from {len(files)} file(s)")
    if missing:
        print(f"{len(missing)} name(s) used but not exposed:", file=sys.stderr)
        for name, wheres in sorted(missing.items()):
            print(f"  - {name}: {wheres[0]}" + (f" (+{len(wheres) - 1} more)" if len(wheres) > 1 else ""),
                  file=sys.stderr)
        return 1
    print("every metric name used is exposed (or recorded, or made by Prometheus): OK")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode")
    sub.add_parser("check", help="structural checks (default)")
    sub.add_parser("exprs", help="print every PromQL expression as JSON lines")
    names = sub.add_parser("names", help="check used metric names against exposed ones")
    names.add_argument("files", nargs="+", help="files with one exposed metric name per line")
    scrape = sub.add_parser("scrape-names", help="print the names exposed by live /metrics URLs")
    scrape.add_argument("urls", nargs="+")
    args = parser.parse_args()
    if args.mode == "scrape-names":
        return scrape_names(args.urls)
    if args.mode == "exprs":
        for e in extract_expressions():
            e["metrics"] = sorted(metric_names(e["promql"]))
            print(json.dumps(e, ensure_ascii=False))
        return 0
    if args.mode == "names":
        return run_names(args.files)
    return run_checks()


if __name__ == "__main__":
    sys.exit(main())
