#!/usr/bin/env python3
"""Tests of scripts/monitoring/check.py: the PromQL name extraction, the exposed-name rules,
and every structural check failing on a deliberately broken copy of the configuration.

    python3 -m unittest scripts/monitoring/test_check.py      (from the repository root)

Standard library + PyYAML (like check.py). Run by scripts/check-monitoring.sh.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import check  # noqa: E402
import dashboards  # noqa: E402


class MetricNames(unittest.TestCase):
    def test_label_matchers_ranges_and_label_lists_are_not_metric_names(self):
        self.assertEqual(
            check.metric_names('sum by (job, route) (rate(inference_http_requests_total'
                               '{route="/predict", status!~"2.."}[5m]))'),
            {"inference_http_requests_total"})

    def test_grafana_macros_and_functions(self):
        self.assertEqual(
            check.metric_names('histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket'
                               '{instance=~"$instance"}[$__rate_interval])))'),
            {"x_seconds_bucket"})

    def test_vector_matching_offset_and_operators(self):
        self.assertEqual(
            check.metric_names("a_total / on(instance) group_left(model) b_info offset 5m > bool 1e3"),
            {"a_total", "b_info"})
        self.assertEqual(check.metric_names("x unless y and z or w"), {"x", "y", "z", "w"})

    def test_recorded_series_constants_and_absent(self):
        self.assertEqual(check.metric_names("time() - model:x:min > 2592000"), {"model:x:min"})
        self.assertEqual(check.metric_names("vector(1)"), set())
        self.assertEqual(
            check.metric_names('up{job="a"} == 0 or absent(up{job="a"})'), {"up"})

    def test_strings_with_braces_or_names_inside_are_ignored(self):
        self.assertEqual(check.metric_names('label_replace(m, "dst", "$1", "src", "(not_a_metric).*")'),
                         {"m"})


class Exposed(unittest.TestCase):
    def test_exact_sample_names(self):
        self.assertTrue(check.is_exposed("system_cpu_count", {"system_cpu_count"}, {}))

    def test_suffix_only_for_a_family_of_matching_type(self):
        types = {"lat_seconds": "histogram", "reqs": "counter", "build": "info"}
        names = set(types)
        self.assertTrue(check.is_exposed("lat_seconds_bucket", names, types))
        self.assertTrue(check.is_exposed("lat_seconds_count", names, types))
        self.assertTrue(check.is_exposed("reqs_total", names, types))
        self.assertTrue(check.is_exposed("build_info", names, types))
        self.assertFalse(check.is_exposed("reqs_bucket", names, types))
        self.assertFalse(check.is_exposed("lat_seconds_total", names, types))

    def test_untyped_family_name_vouches_for_nothing_else(self):
        self.assertFalse(check.is_exposed("system_cpu_count", {"system_cpu"}, {}))
        self.assertFalse(check.is_exposed("lat_seconds_bucket", {"lat_seconds"}, {}))


class GrafanaQueries(unittest.TestCase):
    def test_macros_and_variables_become_promql(self):
        self.assertEqual(
            check.to_promql('rate(x{instance=~"$instance"}[$__rate_interval])', {"instance": ".*"}),
            'rate(x{instance=~".*"}[1m])')
        self.assertEqual(check.to_promql("${instance:regex}", {"instance": ".*"}), ".*")

    def test_variable_selector(self):
        self.assertEqual(check.variable_selector('label_values(up{job="x"}, instance)'), 'up{job="x"}')
        self.assertIsNone(check.variable_selector("label_names()"))


class PredictionRoutes(unittest.TestCase):
    """PREDICT_ROUTES against the API's route templates (the `route` label's values). PromQL
    regexes are fully anchored (RE2): fullmatch here; promtool cases prove it in PromQL."""

    PREDICTION = ["/predict", "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"]
    OTHER = ["/", "/feedback", "/model", "/health", "/ready", "/metrics", "unmatched", "/v2",
             "/v2/health/live", "/v2/health/ready", "/v2/models/{name}", "/v2/models/{name}/ready",
             "/v2/models/{name}/versions/{version}", "/v2/models/{name}/versions/{version}/ready"]

    def test_matches_every_prediction_route_and_no_other(self):
        regex = re.compile(dashboards.PREDICT_ROUTES)
        for route in self.PREDICTION:
            self.assertTrue(regex.fullmatch(route), route)
        for route in self.OTHER:
            self.assertFalse(regex.fullmatch(route), route)

    def test_one_matcher(self):
        self.assertEqual(dashboards.PREDICT_ROUTE_MATCHER, f'route=~"{dashboards.PREDICT_ROUTES}"')


COPIED = ["prometheus", "alertmanager", "grafana-provisioning", "docker", "docker-compose.yml",
          "RUNBOOK.md", "scripts/fetch-onnxruntime.sh",
          "crates/inference-api/configuration/production.yaml"]


class StructuralChecksFail(unittest.TestCase):
    """Each case breaks one thing in a copy of the configuration and expects `check` to fail
    with a message naming it; the unbroken copy must pass."""

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="monitoring-check-"))
        for item in COPIED:
            src, dst = ROOT / item, self.tmp / item
            dst.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def run_check(self):
        env = dict(os.environ, MODELWATCH_ROOT=str(self.tmp))
        return subprocess.run([sys.executable, str(HERE / "check.py"), "check"], env=env,
                              capture_output=True, text=True, timeout=60)

    def edit(self, path, pattern, replacement, count=1):
        file = self.tmp / path
        text = file.read_text()
        new, n = re.subn(pattern, replacement, text, count=count)
        self.assertGreater(n, 0, f"pattern {pattern!r} not found in {path}")
        file.write_text(new)

    def assertFailsWith(self, needle):
        result = self.run_check()
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(needle, result.stderr)

    def test_unbroken_copy_passes(self):
        result = self.run_check()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("monitoring structure: OK", result.stdout)

    RULES = "grafana-provisioning/provisioning/alerting/rules.yml"
    API_DASH = "grafana-provisioning/dashboards/inference-api.json"
    SYS_DASH = "grafana-provisioning/dashboards/system.json"

    def test_grafana_threshold_differs_from_prometheus(self):
        self.edit(self.RULES, r"params: \[0\.05\]", "params: [0.06]")
        self.assertFailsWith("threshold [0.06] != Prometheus 0.05")

    def test_grafana_query_differs_from_prometheus(self):
        self.edit(self.RULES, r"expr: 'instance:system_memory_used:ratio'",
                  "expr: 'avg(instance:system_memory_used:ratio)'")
        self.assertFailsWith("!= Prometheus 'instance:system_memory_used:ratio'")

    def test_grafana_condition_not_a_refid(self):
        self.edit(self.RULES, r"condition: C", "condition: D")
        self.assertFailsWith("condition 'D' is not a refId of data")

    def test_grafana_panel_link_to_missing_panel(self):
        self.edit(self.RULES, r"panelId: 4\b", "panelId: 44")
        self.assertFailsWith("panelId 44 is not a panel of modelwatch-inference-api")

    def test_grafana_interval_not_multiple_of_10s(self):
        self.edit(self.RULES, r"interval: 1m", "interval: 15s")
        self.assertFailsWith("must be a multiple of 10s")

    def test_grafana_rule_without_source_label(self):
        self.edit(self.RULES, r"(?m)^(\s+)source: grafana", r"\1origin: grafana")
        self.assertFailsWith("label source=grafana missing")

    def test_grafana_label_with_dollar(self):
        self.edit(self.RULES, r"severity: critical", "severity: $SEVERITY")
        self.assertFailsWith("no '$' there")

    def test_duplicate_panel_id(self):
        self.edit(self.API_DASH, r'"id": 8,', '"id": 7,')
        self.assertFailsWith("duplicate panel id")

    def test_annotation_on_unknown_datasource(self):
        self.edit(self.API_DASH, r'"uid": "prometheus"(\s*\},\s*"enable": true,\s*"hide": false)',
                  r'"uid": "promethus"\1')
        self.assertFailsWith("annotation 'Model version loaded': unknown datasource")

    def test_import_placeholder(self):
        self.edit(self.SYS_DASH, r'"uid": "prometheus"', '"uid": "${DS_PROMETHEUS}"')
        self.assertFailsWith("import placeholder")

    def test_missing_unit(self):
        self.edit(self.API_DASH, r'"unit": "reqps"', '"unit": ""')
        self.assertFailsWith("no unit")

    def test_overlapping_panels(self):
        self.edit(self.SYS_DASH, r'"x": 8,\s*"y": 1,', '"x": 6, "y": 1,')
        self.assertFailsWith("overlaps panel")

    def test_missing_instance_variable(self):
        self.edit(self.SYS_DASH, r'"name": "instance"', '"name": "host"')
        self.assertFailsWith("no `instance` template variable")

    def test_undefined_recorded_series(self):
        self.edit(self.API_DASH, r"model:model_age_seconds:max", "model:model_age_secs:max", count=0)
        self.assertFailsWith("recorded series model:model_age_secs:max is not defined")

    def test_runbook_table_differs_from_rule(self):
        self.edit("RUNBOOK.md", r"\| `2m` \| `critical`", "| `3m` | `critical`")
        self.assertFailsWith("HighErrorRate: for '3m' != rule '2m'")

    def test_runbook_table_pipe_not_escaped(self):
        # An unescaped pipe in the regex ends the table cell (GitHub and check.py alike).
        self.edit("RUNBOOK.md", r'"/predict\\\|/models', '"/predict|/models')
        self.assertFailsWith("HighLatencyP99: expression")

    def test_rule_left_on_the_predict_route_only(self):
        self.edit("prometheus/rules/recording.yml",
                  r'inference_http_requests_total\{route=~"/predict\|/models/\.\+/predict\|/v2/models/\.\+/infer"\}',
                  'inference_http_requests_total{route="/predict"}')
        self.assertFailsWith('job:inference_predict_requests:rate5m: route matcher route="/predict" '
                             "is not the prediction routes'")

    def test_panel_with_another_prediction_route_regex(self):
        self.edit(self.API_DASH, r'p99_rate5m\{route=~\\"/predict\|/models/\.\+/predict\|/v2/models/\.\+/infer\\"\}',
                  r'p99_rate5m{route=~\\"/predict|/v2/.+/infer\\"}')
        self.assertFailsWith('route matcher route=~"/predict|/v2/.+/infer" is not the prediction routes\'')

    def test_alert_without_runbook_heading(self):
        self.edit("prometheus/rules/alerts.yml", r"RUNBOOK.md#diskspacelow", "RUNBOOK.md#disk")
        self.assertFailsWith("is not a RUNBOOK.md heading anchor")

    def test_recording_rule_badly_named(self):
        self.edit("prometheus/rules/recording.yml", r"record: instance:system_memory_used:ratio",
                  "record: memory_used_ratio")
        self.assertFailsWith("is not named level:metric:operations")

    def test_alert_without_silent_case(self):
        # Every silent case of the alert (below threshold, and still pending) now names another.
        self.edit("prometheus/tests/alerts_test.yml",
                  r"alertname: ExporterCollectorFailing\n(\s+)exp_alerts: \[\]",
                  r"alertname: ExporterDown\n\1exp_alerts: []", count=0)
        self.assertFailsWith("alert ExporterCollectorFailing has no test where it stays silent")

    def test_recording_rule_without_test(self):
        self.edit("prometheus/tests/recording_test.yml",
                  r"(?s)      - expr: model_artifact:model_artifact_age_seconds:max.*\Z", "")
        self.assertFailsWith("recording rule model_artifact:model_artifact_age_seconds:max has no promql_expr_test")

    def test_scrape_target_port_not_in_compose(self):
        self.edit("prometheus/prometheus.yml", r"'traffic-gen:9102'", "'traffic-gen:9103'")
        self.assertFailsWith("traffic-gen:9103: service traffic-gen has container ports [9102]")

    def test_scrape_target_host_not_in_compose(self):
        self.edit("prometheus/prometheus.yml", r"names: \['inference-api'\]", "names: ['api']")
        self.assertFailsWith("'api' is not a docker-compose.yml service")

    def test_port_on_all_interfaces(self):
        self.edit("docker-compose.yml", r'"127\.0\.0\.1:\$\{EXPORTER_PORT:-9101\}:9101"',
                  '"${EXPORTER_PORT:-9101}:9101"')
        self.assertFailsWith("published port bound to all interfaces")

    def test_unpinned_image(self):
        self.edit("docker-compose.yml", r"grafana/grafana:12\.1\.1", "grafana/grafana:latest")
        self.assertFailsWith("is not pinned to a version tag")

    def test_writable_config_mount(self):
        self.edit("docker-compose.yml", r"\./prometheus:/etc/prometheus:ro", "./prometheus:/etc/prometheus")
        self.assertFailsWith("is not read-only")

    def test_alertmanager_secret_path_not_a_compose_secret(self):
        self.edit("alertmanager/alertmanager.yml", r"/run/secrets/slack_webhook_url", "/etc/slack")
        self.assertFailsWith("slack_api_url_file '/etc/slack' is not a compose secret path")

    def test_compose_build_target_missing(self):
        self.edit("docker-compose.yml", r"target: exporter", "target: exporterr")
        self.assertFailsWith("build target 'exporterr' is not a Dockerfile stage")

    def test_onnxruntime_path_differs_from_api_config(self):
        self.edit("docker/Dockerfile", r"(?m)/app/lib/libonnxruntime\.so\.1\.31\.1$",
                  "/app/lib/libonnxruntime.so", count=1)
        self.assertFailsWith("does not put ONNX Runtime at /app/lib/libonnxruntime.so.1.31.1")


if __name__ == "__main__":
    unittest.main()
