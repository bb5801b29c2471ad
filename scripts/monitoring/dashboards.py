#!/usr/bin/env python3
"""Generates the Grafana dashboards of the modelwatch stack.

The JSON files under grafana-provisioning/dashboards/ are what Grafana loads (file provider,
grafana-provisioning/provisioning/dashboards/provider.yml); this script is their source:
edit it, run it, commit both.

    python3 scripts/monitoring/dashboards.py           # (re)write the JSON files
    python3 scripts/monitoring/dashboards.py --check   # exit 1 if a file differs from this script

Standard library only. Datasource: the fixed uid `prometheus`
(grafana-provisioning/provisioning/datasources/datasources.yml); no `${DS_...}` placeholders.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "grafana-provisioning" / "dashboards"

DS = {"type": "prometheus", "uid": "prometheus"}
INFERENCE_UID = "modelwatch-inference-api"
SYSTEM_UID = "modelwatch-system"
QUALITY_UID = "modelwatch-model-quality"

# The prediction routes: POST /predict, POST /models/{name}[/versions/{version}]/predict and the
# Open Inference Protocol's POST /v2/models/{name}[/versions/{version}]/infer. `route` is the actix
# route TEMPLATE (literally "/v2/models/{name}/infer"), and PromQL regexes are fully anchored, so
# this matches those five templates and no other route (not /v2/models/{name}/ready,
# /v2/health/ready, /models, /feedback, /metrics, unmatched). HighErrorRate, HighLatencyP99 and
# their recording rules (prometheus/rules/), the Grafana-managed copies and the RUNBOOK.md
# thresholds table write the same matcher; scripts/monitoring/check.py fails on any other route
# matcher that names a prediction route.
PREDICT_ROUTES = "/predict|/models/.+/predict|/v2/models/.+/infer"
PREDICT_ROUTE_MATCHER = f'route=~"{PREDICT_ROUTES}"'

# Panel ids the Grafana alert rules link to (dashboardUid/panelId). Keep them stable.
PANEL_ERROR_RATIO = 4
PANEL_LATENCY = 6
PANEL_MEMORY_RATIO = 3


def target(expr: str, legend: str = "", ref: str = "A", **extra) -> dict:
    t = {"refId": ref, "datasource": DS, "editorMode": "code", "expr": expr, "range": True}
    if legend:
        t["legendFormat"] = legend
    t.update(extra)
    return t


def thresholds(*steps) -> dict:
    """steps: (value, color) pairs above the green base."""
    return {
        "mode": "absolute",
        "steps": [{"color": "green", "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


def panel(pid, ptype, title, description, grid, targets, unit, **kw) -> dict:
    x, y, w, h = grid
    p = {
        "id": pid,
        "type": ptype,
        "title": title,
        "description": description,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
    }
    defaults = p["fieldConfig"]["defaults"]
    if "min" in kw:
        defaults["min"] = kw.pop("min")
    if "max" in kw:
        defaults["max"] = kw.pop("max")
    if "decimals" in kw:
        defaults["decimals"] = kw.pop("decimals")
    if "thresholds" in kw:
        defaults["thresholds"] = kw.pop("thresholds")
    if kw.pop("threshold_line", False):
        defaults["custom"] = {"thresholdsStyle": {"mode": "line+area"}}
    if "mappings" in kw:
        defaults["mappings"] = kw.pop("mappings")
    if ptype == "timeseries":
        p["options"] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif ptype == "stat":
        p["options"] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        }
    p["options"].update(kw.pop("options", {}))
    p.update(kw)
    return p


def row(pid, title, y) -> dict:
    return {
        "id": pid,
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def instance_variable(job: str) -> dict:
    query = f'label_values(up{{job="{job}"}}, instance)'
    return {
        "name": "instance",
        "label": "instance",
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
        "options": [],
        "regex": "",
    }


def model_variable() -> dict:
    """The model selection: every model a replica serves (inference_model_info)."""
    query = "label_values(inference_model_info, model)"
    return {**instance_variable("inference-api"), "name": "model", "label": "model", "definition": query,
            "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"}}


def version_variable() -> dict:
    """The version selection: every version of the selected models in the repository (the
    exporter's model_version_trained_timestamp_seconds), served or not."""
    query = 'label_values(model_version_trained_timestamp_seconds{model=~"$model"}, version)'
    return {**model_variable(), "name": "version", "label": "version", "definition": query,
            "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"}}


def version_annotation() -> dict:
    """A mark wherever a replica loaded and started serving a version of a selected model (its
    load time moved: a new version swapped in, or a version's files changed), to compare the
    panels before and after a rollout."""
    expr = ('sum by (model) (changes(inference_model_loaded_timestamp_seconds{model=~"$model"}[2m])) > 0')
    return {
        "datasource": DS,
        "enable": True,
        "hide": False,
        "iconColor": "rgba(255, 152, 48, 1)",
        "name": "Model version loaded",
        "expr": expr,
        "step": "1m",
        "titleFormat": "{{model}}: a version loaded and served",
        "textFormat": "GET /models lists the versions; the 'Versions in the repository' panel what each holds",
    }


def dashboard(uid, title, description, panels, variable_job, tags, models=False) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["modelwatch", *tags],
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "graphTooltip": 1,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "timezone": "browser",
        "templating": {"list": [instance_variable(variable_job),
                                *([model_variable(), version_variable()] if models else [])]},
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                *([version_annotation()] if models else []),
            ]
        },
        "links": [
            {
                "type": "dashboards",
                "tags": ["modelwatch"],
                "asDropdown": False,
                "title": "modelwatch",
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "panels": panels,
    }


I = 'instance=~"$instance"'
# The model selection, on every series with a `model` label (dashboards with a `model` variable).
M = 'model=~"$model"'
IM = f"{I}, {M}"
# The version selection, on series with a `version` label (the same dashboards).
V = 'version=~"$version"'


def inference_api() -> dict:
    panels = [
        row(100, "Traffic and errors", 0),
        panel(1, "stat", "Request rate",
              "All HTTP requests answered by the selected replicas.",
              (0, 1, 6, 4),
              [target(f"sum(rate(inference_http_requests_total{{{I}}}[$__rate_interval]))")],
              "reqps"),
        panel(2, "stat", "Prediction error ratio (5m)",
              "Share of the responses to the prediction routes (/predict and the V2 .../infer "
              "routes together) that were not 2xx over 5 minutes, all replicas "
              "(job:inference_predict_errors:ratio_rate5m). HighErrorRate fires above 5% for 2m.",
              (6, 1, 6, 4),
              [target("job:inference_predict_errors:ratio_rate5m")],
              "percentunit", thresholds=thresholds((0.05, "red")), min=0),
        panel(5, "stat", "Requests in flight",
              "Requests being processed right now, summed over the selected replicas.",
              (12, 1, 6, 4),
              [target(f"sum(inference_http_requests_in_flight{{{I}}})")],
              "short"),
        panel(7, "stat", "Replicas up",
              "Inference API replicas that answered their last scrape.",
              (18, 1, 6, 4),
              [target('sum(up{job="inference-api"})')],
              "short", thresholds={"mode": "absolute", "steps": [
                  {"color": "red", "value": None}, {"color": "green", "value": 1}]}),
        panel(3, "timeseries", "Request rate by route",
              "Requests per second by route template (unmatched = no route).",
              (0, 5, 12, 8),
              [target(f"sum by (route) (rate(inference_http_requests_total{{{I}}}[$__rate_interval]))",
                      "{{route}}")],
              "reqps"),
        panel(PANEL_ERROR_RATIO, "timeseries", "Prediction error ratio",
              "Non-2xx share of the responses to the prediction routes (/predict and the V2 "
              ".../infer routes together). 'all replicas' is the series HighErrorRate "
              "(Prometheus and Grafana) alerts on, threshold 5%; per-instance lines use the "
              "dashboard's instance selection.",
              (12, 5, 12, 8),
              [target("job:inference_predict_errors:ratio_rate5m", "all replicas (alerted)"),
               target(f'sum by (instance) (rate(inference_http_requests_total{{{PREDICT_ROUTE_MATCHER}, status!~"2..", {I}}}[$__rate_interval]))'
                      f' / sum by (instance) (rate(inference_http_requests_total{{{PREDICT_ROUTE_MATCHER}, {I}}}[$__rate_interval]))',
                      "{{instance}}", ref="B")],
              "percentunit", min=0, thresholds=thresholds((0.05, "red")), threshold_line=True),
        panel(8, "timeseries", "Errors by kind",
              "Errors per second by kind (malformed_json, validation, overloaded, not_ready, model, ...).",
              (0, 13, 12, 8),
              [target(f"sum by (kind) (rate(inference_errors_total{{{I}}}[$__rate_interval]))", "{{kind}}")],
              "reqps"),
        panel(9, "timeseries", "Responses by status",
              "Responses per second by HTTP status, all routes.",
              (12, 13, 12, 8),
              [target(f"sum by (status) (rate(inference_http_requests_total{{{I}}}[$__rate_interval]))", "{{status}}")],
              "reqps"),
        row(101, "Latency", 21),
        panel(PANEL_LATENCY, "timeseries", "Prediction latency p50 / p95 / p99 by route",
              "Quantiles of the response time of each prediction route (/predict and the V2 "
              ".../infer routes) over 5 minutes, all replicas (recorded series). HighLatencyP99 "
              "fires for a route whose p99 stays above 500 ms for 2m.",
              (0, 22, 12, 8),
              [target(f"job_route:inference_http_request_duration_seconds:p50_rate5m{{{PREDICT_ROUTE_MATCHER}}}", "p50 {{route}}"),
               target(f"job_route:inference_http_request_duration_seconds:p95_rate5m{{{PREDICT_ROUTE_MATCHER}}}", "p95 {{route}}", ref="B"),
               target(f"job_route:inference_http_request_duration_seconds:p99_rate5m{{{PREDICT_ROUTE_MATCHER}}}", "p99 {{route}} (alerted)", ref="C")],
              "s", min=0, thresholds=thresholds((0.5, "red")), threshold_line=True),
        panel(10, "timeseries", "p99 latency by route and instance",
              "99th percentile of the response time per route template and replica.",
              (12, 22, 12, 8),
              [target(f"histogram_quantile(0.99, sum by (route, instance, le) (rate(inference_http_request_duration_seconds_bucket{{{I}}}[$__rate_interval])))",
                      "{{route}} {{instance}}")],
              "s", min=0),
        panel(11, "timeseries", "Preprocess vs model run time (mean and p99)",
              "Time spent turning the request into a feature matrix vs running the ONNX model, per call.",
              (0, 30, 12, 8),
              [target(f"sum(rate(inference_preprocess_duration_seconds_sum{{{IM}}}[$__rate_interval])) / sum(rate(inference_preprocess_duration_seconds_count{{{IM}}}[$__rate_interval]))", "preprocess mean"),
               target(f"histogram_quantile(0.99, sum by (le) (rate(inference_preprocess_duration_seconds_bucket{{{IM}}}[$__rate_interval])))", "preprocess p99", ref="B"),
               target(f"sum(rate(inference_model_run_duration_seconds_sum{{{IM}}}[$__rate_interval])) / sum(rate(inference_model_run_duration_seconds_count{{{IM}}}[$__rate_interval]))", "model mean", ref="C"),
               target(f"histogram_quantile(0.99, sum by (le) (rate(inference_model_run_duration_seconds_bucket{{{IM}}}[$__rate_interval])))", "model p99", ref="D")],
              "s", min=0),
        panel(12, "timeseries", "Batch size (rows per call)",
              "Rows per ONNX Runtime call: mean and 99th percentile. Rows of requests that are ready "
              "together on one worker share a call (model.coalesce_max_rows), so this grows with load.",
              (12, 30, 12, 8),
              [target(f"sum(rate(inference_batch_size_sum{{{IM}}}[$__rate_interval])) / sum(rate(inference_batch_size_count{{{IM}}}[$__rate_interval]))", "mean"),
               target(f"histogram_quantile(0.99, sum by (le) (rate(inference_batch_size_bucket{{{IM}}}[$__rate_interval])))", "p99", ref="B")],
              "short", min=0),
        row(102, "Model", 38),
        panel(13, "timeseries", "Predictions by class",
              "Predicted rows per second by class.",
              (0, 39, 8, 8),
              [target(f"sum by (model, class) (rate(inference_predictions_total{{{IM}}}[$__rate_interval]))", "{{model}} {{class}}")],
              "cps", min=0),
        panel(14, "heatmap", "Prediction confidence distribution",
              "Distribution of the winning class probability (0.5 .. 1) over time. Mass moving "
              "towards 0.5 means the model is less sure.",
              (8, 39, 8, 8),
              [target(f"sum by (le) (rate(inference_prediction_confidence_bucket{{{IM}}}[$__rate_interval]))", "{{le}}",
                      format="heatmap")],
              "short",
              options={"calculate": False, "cellGap": 1, "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
                       "yAxis": {"unit": "percentunit", "axisPlacement": "left"},
                       "rowsFrame": {"layout": "auto"}, "tooltip": {"show": True, "yHistogram": False},
                       "legend": {"show": True}}),
        panel(15, "timeseries", "Mean confidence by class",
              "Mean winning-class probability per predicted class.",
              (16, 39, 8, 8),
              [target(f"sum by (class) (rate(inference_prediction_confidence_sum{{{IM}}}[$__rate_interval])) / sum by (class) (rate(inference_prediction_confidence_count{{{IM}}}[$__rate_interval]))", "{{class}}")],
              "percentunit", min=0.5, max=1),
        panel(16, "table", "Model version per replica",
              "inference_model_info: which model version each replica serves (of the selected "
              "versions).",
              (0, 47, 8, 6),
              [target(f"inference_model_info{{{IM}, {V}}}", format="table", instant=True, range=False)],
              "none",
              transformations=[{"id": "organize", "options": {
                  "excludeByName": {"Time": True, "Value": True, "__name__": True, "job": True},
                  "renameByName": {}}}]),
        panel(17, "bargauge", "Validation scores",
              "Scores of the loaded model on its hold-out set, from the manifest.",
              (8, 47, 8, 6),
              [target(f"max by (metric) (inference_model_validation_score{{{IM}}})", "{{metric}}", instant=True, range=False)],
              "percentunit", min=0, max=1,
              options={"orientation": "horizontal", "displayMode": "gradient",
                       "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}),
        panel(18, "stat", "Model age (oldest copy in service)",
              "Time since the oldest copy of each model (bundle on disk or loaded by a replica) "
              "was trained (model:model_age_seconds:max). ModelStale fires past the manifest's "
              "`max_age_days` (model:model_max_age_seconds:min); red marks the default, 30 days.",
              (16, 47, 4, 6),
              [target(f"model:model_age_seconds:max{{{M}}}", "{{model}}")],
              "s", thresholds=thresholds((2592000, "red"))),
        panel(19, "stat", "Artifact age",
              "Time since each file of the model bundle last changed on disk (exporter).",
              (20, 47, 4, 6),
              [target(f"model_artifact:model_artifact_age_seconds:max{{{M}}}", "{{artifact}}")],
              "s", options={"graphMode": "none"}),
        panel(23, "timeseries", "Model version loads",
              "Attempts to load a model version, by outcome (inference_model_loads_total): at "
              "startup and whenever a new or changed version appears in the repository. loaded = "
              "served from then on; failed = refused, the version serving keeps serving (GET "
              "/models and the API's log say why).",
              (0, 53, 24, 6),
              [target(f"sum by (model, outcome) (increase(inference_model_loads_total{{{IM}}}[$__rate_interval]))",
                      "{{model}} {{outcome}}")],
              "short", min=0),
        row(103, "Client side (traffic-gen)", 59),
        panel(20, "timeseries", "Client requests by kind and outcome",
              "Requests per second sent by the traffic generator, as the client saw them.",
              (0, 60, 8, 8),
              [target("sum by (kind, outcome) (rate(traffic_requests_total[$__rate_interval]))", "{{kind}} {{outcome}}")],
              "reqps", min=0),
        panel(21, "timeseries", "Client latency p99 by kind",
              "99th percentile of the latency measured by the traffic generator (from the intended "
              "send time, so queueing counts).",
              (8, 60, 8, 8),
              [target("histogram_quantile(0.99, sum by (kind, le) (rate(traffic_request_duration_seconds_bucket[$__rate_interval])))", "{{kind}}")],
              "s", min=0),
        panel(22, "timeseries", "Late sends",
              "Requests the traffic generator sent later than scheduled, per second: above 0 the "
              "generator itself is saturated.",
              (16, 60, 8, 8),
              [target("sum(rate(traffic_late_sends_total[$__rate_interval]))", "late sends")],
              "cps", min=0),
    ]
    return dashboard(INFERENCE_UID, "modelwatch / Inference API",
                     "Inference API: traffic, errors, latency, model behaviour; plus the traffic "
                     "generator's client-side view.",
                     panels, "inference-api", ["inference-api"], models=True)


def system() -> dict:
    panels = [
        row(100, "Machine", 0),
        panel(1, "timeseries", "CPU usage",
              "Whole-machine CPU usage (0..1) as seen by the exporter.",
              (0, 1, 8, 8),
              [target(f"system_cpu_usage_ratio{{{I}}}", "{{instance}}")],
              "percentunit", min=0, max=1),
        panel(2, "timeseries", "Load average",
              "1, 5 and 15 minute load averages, with the number of CPUs for scale.",
              (8, 1, 8, 8),
              [target(f"system_load1{{{I}}}", "load1 {{instance}}"),
               target(f"system_load5{{{I}}}", "load5 {{instance}}", ref="B"),
               target(f"system_load15{{{I}}}", "load15 {{instance}}", ref="C"),
               target(f"system_cpu_count{{{I}}}", "CPUs {{instance}}", ref="D")],
              "short", min=0),
        panel(PANEL_MEMORY_RATIO, "timeseries", "Memory used ratio",
              "system_memory_used_bytes / system_memory_total_bytes (instance:system_memory_used:ratio). "
              "HighMemoryUsage fires above 80% for 5m.",
              (16, 1, 8, 8),
              [target(f"instance:system_memory_used:ratio{{{I}}}", "{{instance}}")],
              "percentunit", min=0, max=1, thresholds=thresholds((0.8, "red")), threshold_line=True),
        panel(4, "timeseries", "Memory",
              "Total, used and available memory, and swap, as the exporter sees the machine. "
              "(system_memory_limit_bytes, the exporter's own cgroup limit, is exported only where "
              "one applies and is left out here.)",
              (0, 9, 12, 8),
              [target(f"system_memory_total_bytes{{{I}}}", "total {{instance}}"),
               target(f"system_memory_used_bytes{{{I}}}", "used {{instance}}", ref="B"),
               target(f"system_memory_available_bytes{{{I}}}", "available {{instance}}", ref="C"),
               target(f"system_swap_used_bytes{{{I}}}", "swap used {{instance}}", ref="D"),
               target(f"system_swap_total_bytes{{{I}}}", "swap total {{instance}}", ref="E")],
              "bytes", min=0),
        panel(5, "timeseries", "Filesystem space available",
              "Available share of each watched filesystem. DiskSpaceLow fires below 10% for 10m.",
              (12, 9, 12, 8),
              [target(f"instance_mountpoint:system_filesystem_avail:ratio{{{I}}}", "{{mountpoint}} {{instance}}")],
              "percentunit", min=0, max=1,
              thresholds={"mode": "absolute", "steps": [
                  {"color": "red", "value": None}, {"color": "green", "value": 0.1}]},
              threshold_line=True),
        panel(6, "bargauge", "Filesystem size and free space",
              "Size and available bytes of each watched mount point.",
              (0, 17, 24, 7),
              [target(f"system_filesystem_size_bytes{{{I}}}", "size {{mountpoint}}", instant=True, range=False),
               target(f"system_filesystem_avail_bytes{{{I}}}", "available {{mountpoint}}", ref="B", instant=True, range=False)],
              "bytes", min=0,
              options={"orientation": "horizontal", "displayMode": "basic",
                       "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}),
        row(101, "Exporter health", 24),
        panel(7, "stat", "Collector status",
              "exporter_collector_success per collector: OK or FAILING (ExporterCollectorFailing fires after 5m).",
              (0, 25, 8, 8),
              [target(f"exporter_collector_success{{{I}}}", "{{collector}}")],
              "none",
              mappings=[{"type": "value", "options": {
                  "0": {"text": "FAILING", "color": "red", "index": 0},
                  "1": {"text": "OK", "color": "green", "index": 1}}}],
              thresholds={"mode": "absolute", "steps": [
                  {"color": "red", "value": None}, {"color": "green", "value": 1}]},
              options={"colorMode": "background", "graphMode": "none"}),
        panel(8, "timeseries", "Collector duration",
              "Time each exporter collector took at the last scrape.",
              (8, 25, 8, 8),
              [target(f"exporter_collector_duration_seconds{{{I}}}", "{{collector}}")],
              "s", min=0),
        panel(9, "stat", "Scrape targets up",
              "Targets answering their scrape, by job.",
              (16, 25, 8, 8),
              [target("sum by (job) (up)", "{{job}}")],
              "short",
              thresholds={"mode": "absolute", "steps": [
                  {"color": "red", "value": None}, {"color": "green", "value": 1}]},
              options={"colorMode": "background", "graphMode": "none"}),
        row(102, "Service processes", 33),
        panel(10, "timeseries", "Resident memory by service",
              "process_resident_memory_bytes of every scraped service.",
              (0, 34, 12, 8),
              [target("process_resident_memory_bytes", "{{job}} {{instance}}")],
              "bytes", min=0),
        panel(11, "timeseries", "CPU by service",
              "CPU time per second of every scraped service (1 = one full core).",
              (12, 34, 12, 8),
              [target("rate(process_cpu_seconds_total[$__rate_interval])", "{{job}} {{instance}}")],
              "percentunit", min=0),
        panel(12, "timeseries", "Open file descriptors by service",
              "process_open_fds as a share of process_max_fds.",
              (0, 42, 12, 8),
              [target("process_open_fds / process_max_fds", "{{job}} {{instance}}")],
              "percentunit", min=0),
        panel(13, "timeseries", "Threads by service",
              "process_threads of every scraped service.",
              (12, 42, 12, 8),
              [target("process_threads", "{{job}} {{instance}}")],
              "short", min=0),
    ]
    return dashboard(SYSTEM_UID, "modelwatch / System",
                     "The machine the model runs on (exporter), the exporter's own health, and "
                     "the processes of the services.",
                     panels, "exporter", ["system"])


def model_quality() -> dict:
    # Thresholds of DataDriftDetected and LiveAccuracyLow (RUNBOOK.md#thresholds), drawn on panels.
    drift_threshold = 0.25
    drift_min_rows = 300
    min_labels = 50
    psi = f"inference_feature_drift_psi{{{IM}}}"
    panels = [
        row(100, "Drift", 0),
        panel(1, "stat", "Drift score (mean PSI)",
              "Mean PSI over the features of each model, from drift windows of at least 300 rows, "
              "all replicas (model:inference_feature_drift_psi:mean). DataDriftDetected fires above "
              "0.25 for 10m; normal traffic gives about 0.10. No data while no window has 300 rows.",
              (0, 1, 6, 5),
              [target(f"model:inference_feature_drift_psi:mean{{{M}}}", "{{model}}")],
              "none", decimals=2, min=0, thresholds=thresholds((drift_threshold, "red"))),
        panel(2, "stat", "Drift window rows",
              "Rows in each replica's drift window: the sample size of its PSI. Windows under 300 "
              "rows do not count towards the drift score (sampling noise alone lifts their PSI).",
              (6, 1, 6, 5),
              [target(f"inference_drift_window_rows{{{IM}}}", "{{model}} {{instance}}")],
              "short",
              thresholds={"mode": "absolute", "steps": [
                  {"color": "orange", "value": None}, {"color": "green", "value": drift_min_rows}]},
              options={"graphMode": "none"}),
        panel(3, "stat", "Live accuracy (1h)",
              "Share of the feedback labels of the last hour that matched the prediction, all "
              "replicas (model:inference_feedback_correct:ratio_increase1h). No data in an hour "
              "without labels.",
              (12, 1, 6, 5),
              [target(f"model:inference_feedback_correct:ratio_increase1h{{{M}}}", "{{model}}")],
              "percentunit", decimals=1, min=0, max=1),
        panel(4, "stat", "Feedback labels (1h)",
              "Feedback labels received over the last hour, all replicas "
              "(model:inference_feedback:increase1h). LiveAccuracyLow judges only on 50 or more.",
              (18, 1, 6, 5),
              [target(f"model:inference_feedback:increase1h{{{M}}}", "{{model}}")],
              "short", decimals=0,
              thresholds={"mode": "absolute", "steps": [
                  {"color": "orange", "value": None}, {"color": "green", "value": min_labels}]}),
        panel(5, "timeseries", "Drift score vs threshold",
              "'alerted' is the series DataDriftDetected uses (mean PSI over features, windows of at "
              "least 300 rows, all replicas), threshold 0.25. Per-replica lines average the PSI of "
              "each replica's window whatever its size.",
              (0, 6, 12, 8),
              [target(f"model:inference_feature_drift_psi:mean{{{M}}}", "{{model}} (alerted)"),
               target(f"avg by (model, instance) ({psi})", "{{model}} {{instance}}", ref="B")],
              "none", min=0, decimals=2, thresholds=thresholds((drift_threshold, "red")),
              threshold_line=True),
        panel(6, "timeseries", "PSI per feature (top 10)",
              "Population Stability Index of each feature's recent inputs against its training "
              "quantile bins, averaged over the selected replicas; the 10 highest at each moment. "
              "Under 0.1 little change, 0.1 to 0.25 moderate, above 0.25 large.",
              (12, 6, 12, 8),
              [target(f"topk(10, avg by (model, feature) ({psi}))", "{{feature}}")],
              "none", min=0, decimals=2),
        panel(7, "bargauge", "PSI by feature (now)",
              "Every feature's PSI at the end of the time range, highest first, averaged over the "
              "selected replicas.",
              (0, 14, 12, 10),
              [target(f"sort_desc(avg by (feature) ({psi}))", "{{feature}}", instant=True, range=False)],
              "none", min=0, decimals=2,
              thresholds=thresholds((0.1, "yellow"), (drift_threshold, "red")),
              options={"orientation": "horizontal", "displayMode": "gradient",
                       "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}),
        panel(8, "timeseries", "Drift window rows",
              "Rows in each replica's drift window (the last drift_window_rows predicted rows, no "
              "older than drift_window_max_age_seconds). Below the line (300 rows) the window does "
              "not count towards the drift score.",
              (12, 14, 12, 10),
              [target(f"inference_drift_window_rows{{{IM}}}", "{{model}} {{instance}}")],
              "short", min=0,
              thresholds={"mode": "absolute", "steps": [
                  {"color": "orange", "value": None}, {"color": "transparent", "value": drift_min_rows}]},
              threshold_line=True),
        row(101, "Data quality", 24),
        panel(9, "timeseries", "Out-of-range share of predicted rows (top 10 features)",
              "Share of the predicted rows whose value of a feature lay outside its training "
              "min..max, over 5 minutes, all replicas "
              "(model_feature:inference_feature_out_of_range:ratio_rate5m).",
              (0, 25, 8, 8),
              [target(f"topk(10, model_feature:inference_feature_out_of_range:ratio_rate5m{{{M}}})", "{{feature}}")],
              "percentunit", min=0),
        panel(10, "timeseries", "Out-of-range values per second (top 10 features)",
              "Values outside the training min..max per second, by feature, all replicas "
              "(model_feature:inference_feature_out_of_range:rate5m).",
              (8, 25, 8, 8),
              [target(f"topk(10, model_feature:inference_feature_out_of_range:rate5m{{{M}}})", "{{feature}}")],
              "cps", min=0),
        panel(11, "timeseries", "Missing values per second (top 10 features)",
              "Absent or null feature values per second, all replicas "
              "(model_feature:inference_feature_missing:rate5m): rejected rows (422, "
              "missing_values: reject) and imputed ones (impute) both count.",
              (16, 25, 8, 8),
              [target(f"topk(10, model_feature:inference_feature_missing:rate5m{{{M}}})", "{{feature}}")],
              "cps", min=0),
        row(102, "Live accuracy and feedback", 33),
        panel(12, "timeseries", "Live vs validation accuracy",
              "Live accuracy over the last hour (feedback labels that matched the prediction, all "
              "replicas), the validation accuracy from the model's manifest, and the "
              "LiveAccuracyLow threshold: validation minus 0.10, judged on at least 50 labels an hour.",
              (0, 34, 12, 8),
              [target(f"model:inference_feedback_correct:ratio_increase1h{{{M}}}", "{{model}} live (1h)"),
               target(f'model_metric:inference_model_validation_score:max{{metric="accuracy", {M}}}',
                      "{{model}} validation", ref="B"),
               target(f'model_metric:inference_model_validation_score:max{{metric="accuracy", {M}}} - 0.1',
                      "{{model}} alert threshold", ref="C")],
              "percentunit", min=0, max=1, decimals=1),
        panel(13, "timeseries", "Feedback labels by outcome",
              "Feedback labels per second (POST /feedback) whose true class matched the "
              "prediction (correct) or not (incorrect), selected replicas.",
              (12, 34, 12, 8),
              [target(f"sum by (model, outcome) (rate(inference_feedback_total{{{IM}}}[$__rate_interval]))",
                      "{{model}} {{outcome}}")],
              "cps", min=0),
        panel(14, "timeseries", "Unmatched labels and unlabelled evictions",
              "Labels per second for unknown or already evicted predictions (404 on /feedback), "
              "and predicted rows per second evicted from the feedback store before any label "
              "came. Unmatched labels that rise with evictions mean the store "
              "(feedback.store_rows) is too small for the labelling delay.",
              (0, 42, 12, 8),
              [target(f"sum by (model) (rate(inference_feedback_unmatched_total{{{IM}}}[$__rate_interval]))",
                      "{{model}} unmatched labels"),
               target(f"sum by (model) (rate(inference_feedback_evicted_total{{{IM}}}[$__rate_interval]))",
                      "{{model}} evicted unlabelled", ref="B")],
              "cps", min=0),
        panel(15, "timeseries", "Predicted class share",
              "Share of the predicted rows by class, selected replicas. A shift here, with no "
              "labels yet, is the earliest sign that the inputs or the model changed.",
              (12, 42, 12, 8),
              [target(f"sum by (model, class) (rate(inference_predictions_total{{{IM}}}[$__rate_interval]))"
                      f" / on (model) group_left () sum by (model) (rate(inference_predictions_total{{{IM}}}[$__rate_interval]))",
                      "{{model}} {{class}}")],
              "percentunit", min=0, max=1),
        panel(16, "timeseries", "Model age vs its limit",
              "Time since the oldest copy of each model in service was trained "
              "(model:model_age_seconds:max), against the age its manifest allows "
              "(model:model_max_age_seconds:min, `max_age_days`, 30 days unless set). ModelStale "
              "fires when the age stays above the limit; writing a newly trained version into the "
              "model's folder resets it within seconds (RUNBOOK.md#modelstale).",
              (0, 50, 24, 8),
              [target(f"model:model_age_seconds:max{{{M}}}", "{{model}} age"),
               target(f"model:model_max_age_seconds:min{{{M}}}", "{{model}} limit", ref="B")],
              "s", min=0),
        panel(17, "table", "Versions in the repository",
              "Every version of the selected models in the repository, served or not (exporter): "
              "when it was trained, the size of its model.onnx, and how many API replicas serve it "
              "(empty: on disk only; an older version, or one the API refused: GET /models says "
              "why). Each model serves its newest version that loads.",
              (0, 58, 24, 8),
              [target(f"model_version_trained_timestamp_seconds{{{M}, {V}}} * 1000",
                      format="table", instant=True, range=False),
               target(f'model_version_artifact_size_bytes{{{M}, {V}, artifact="model.onnx"}}',
                      format="table", instant=True, range=False, ref="B"),
               target(f"count by (model, version) (inference_model_info{{{IM}, {V}}})",
                      format="table", instant=True, range=False, ref="C")],
              "none",
              transformations=[
                  {"id": "merge", "options": {}},
                  {"id": "organize", "options": {
                      "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True,
                                        "artifact": True},
                      "indexByName": {"model": 0, "version": 1, "Value #A": 2, "Value #B": 3, "Value #C": 4},
                      "renameByName": {"Value #A": "trained", "Value #B": "model.onnx",
                                       "Value #C": "replicas serving"}}}],
              fieldConfig={"defaults": {"unit": "none"}, "overrides": [
                  {"matcher": {"id": "byName", "options": "Value #A"},
                   "properties": [{"id": "unit", "value": "dateTimeAsIso"}]},
                  {"matcher": {"id": "byName", "options": "Value #B"},
                   "properties": [{"id": "unit", "value": "bytes"}]}]}),
    ]
    return dashboard(QUALITY_UID, "modelwatch / Model quality",
                     "Is the model still right? Input drift (PSI per feature against the training "
                     "distribution), data quality (out-of-range and missing values) and live "
                     "accuracy from feedback labels, against the DataDriftDetected and "
                     "LiveAccuracyLow thresholds.",
                     panels, "inference-api", ["model-quality"], models=True)


DASHBOARDS = {
    "inference-api.json": inference_api,
    "system.json": system,
    "model-quality.json": model_quality,
}


def render(build) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if a committed file differs")
    args = parser.parse_args()
    stale = []
    for name, build in DASHBOARDS.items():
        path = OUT / name
        text = render(build)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("dashboards differ from scripts/monitoring/dashboards.py (run it and commit): "
              + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
