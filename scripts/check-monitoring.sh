#!/usr/bin/env bash
# Offline checks of the monitoring stack (prometheus/, alertmanager/, grafana-provisioning/,
# docker-compose.yml, RUNBOOK.md). Runs every check, prints each result, exits 1 if any failed.
#
#   scripts/check-monitoring.sh
#
# Needs: promtool (Debian `prometheus`, 2.42), amtool (Debian `prometheus-alertmanager`, 0.25),
# check-jsonschema and PyYAML in .venv (scripts/setup.sh installs them from
# scripts/requirements-dev.txt; MONITORING_VENV points elsewhere).
# and Debian `docker-compose` 1.29 for a `config` pass (the compose file must suit v1 and v2).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Python tools (check-jsonschema, PyYAML) come from the repository venv that scripts/setup.sh
# installs from scripts/requirements-dev.txt (the one list of pinned Python tools).
venv="${MONITORING_VENV:-$root/.venv}"
py="$venv/bin/python"

source scripts/lib/checks.sh
need promtool "apt-get install --no-install-recommends prometheus"
need amtool "apt-get install --no-install-recommends prometheus-alertmanager"
if [ ! -x "$venv/bin/check-jsonschema" ] || ! "$py" -c "import yaml" 2>/dev/null; then
  echo "missing check-jsonschema/PyYAML in $venv: run scripts/setup.sh" >&2
  exit 1
fi

# --------------------------------------------------------------------------- Prometheus
step "promtool check config" promtool check config prometheus/prometheus.yml
step "promtool check rules" promtool check rules prometheus/rules/*.yml
step "promtool test rules" promtool test rules prometheus/tests/*.yml

# --------------------------------------------------------------------------- Alertmanager
step "amtool check-config" amtool check-config alertmanager/alertmanager.yml

# Routing, as the table in RUNBOOK.md says: the three specified alerts, the API's availability
# and model quality -> email + Slack (Grafana-managed copies too), other warnings -> email,
# Watchdog -> nobody. Inhibition is checked against a running Alertmanager further down.
routes_ok() {
  local got ok=0
  while read -r want labels; do
    # shellcheck disable=SC2086
    got="$(amtool config routes test --config.file=alertmanager/alertmanager.yml $labels 2>/dev/null)"
    if [ "$got" != "$want" ]; then
      echo "    route for {$labels}: got '$got', want '$want'" >&2
      ok=1
    fi
  done <<'ROUTES'
email-and-slack alertname=HighErrorRate severity=critical job=inference-api
email-and-slack alertname=HighErrorRate severity=critical source=grafana
email-and-slack alertname=HighLatencyP99 severity=warning job=inference-api
email-and-slack alertname=HighLatencyP99 severity=warning source=grafana
email-and-slack alertname=HighMemoryUsage severity=warning instance=exporter:9101
email-and-slack alertname=HighMemoryUsage severity=warning source=grafana
email-and-slack alertname=InferenceApiDown severity=critical job=inference-api
email-and-slack alertname=InferenceApiReplicaLost severity=warning job=inference-api
email alertname=ModelStale severity=warning
email alertname=DiskSpaceLow severity=warning
email alertname=ExporterDown severity=warning job=exporter
email alertname=ExporterCollectorFailing severity=warning job=exporter
email-and-slack alertname=SomethingCritical severity=critical
email-and-slack alertname=DataDriftDetected severity=warning
email-and-slack alertname=LiveAccuracyLow severity=warning
email alertname=SomethingNew
null alertname=Watchdog severity=none
ROUTES
  return $ok
}
step "alertmanager routes" routes_ok

# Templates render (template errors otherwise only show when a notification is sent), with
# the summary, the full runbook link and the Grafana link in every channel.
render() {  # render <data.json> <template name> [text|html]
  amtool template render --template.type="${3:-text}" --template.glob='alertmanager/templates/*.tmpl' \
    --template.data="alertmanager/tests/$1" --template.text="{{ template \"$2\" . }}"
}
templates_ok() {
  # The default runbook base: the gateway's rendered copy of RUNBOOK.md (docker-compose.yml).
  local out ok=0 runbook='http://127.0.0.1:8080/RUNBOOK.md#higherrorrate'
  local summary='12.5% of prediction calls fail on inference-api'
  local dash='http://127.0.0.1:3000/d/modelwatch-inference-api'
  expect() {  # expect <what> <output> <needle>...
    local what="$1" text="$2"; shift 2
    for needle in "$@"; do
      if [[ "$text" != *"$needle"* ]]; then
        echo "    $what: missing '$needle' in:" >&2; sed 's/^/      | /' <<<"$text" >&2; ok=1
      fi
    done
  }
  out="$(render firing.json modelwatch.subject)" || ok=1
  expect "subject (firing)" "$out" "[FIRING:1] HighErrorRate (critical)"
  out="$(render resolved.json modelwatch.subject)" || ok=1
  expect "subject (resolved)" "$out" "[RESOLVED] HighErrorRate"
  out="$(render firing.json modelwatch.email.text)" || ok=1
  expect "email text" "$out" "$summary" "Runbook: $runbook" "Dashboard: $dash"
  out="$(render firing.json modelwatch.email.html html)" || ok=1
  expect "email html" "$out" "$summary" "href=\"$runbook\"" "href=\"$dash\""
  out="$(render firing.json modelwatch.slack.text)" || ok=1
  expect "slack text" "$out" "$summary" "<$runbook|Runbook>" "<$dash|Dashboard>"
  out="$(render resolved.json modelwatch.slack.text)" || ok=1
  expect "slack text (resolved, absolute runbook URL kept)" "$out" "resolved" "<https://runbooks.example.org/latency|Runbook>"
  out="$(render firing.json modelwatch.slack.color)" || ok=1
  expect "slack color" "$out" "danger"
  # Labels: "name=value" separated by one space, no trailing space; in Slack each label is inline
  # code, so underscores and slashes in values are shown as they are, never read as italics.
  out="$(render firing-disk.json modelwatch.email.text)" || ok=1
  expect "email labels" "$out" $'Labels: instance=exporter:9101 mountpoint=/host_root/var_lib\n'
  out="$(render firing-disk.json modelwatch.slack.text)" || ok=1
  expect "slack labels" "$out" $'\n`instance=exporter:9101` `mountpoint=/host_root/var_lib`\n'
  if grep -nE '(^|[[:space:]])_[^`]*_([[:space:]]|$)| _$' <<<"$out" >&2; then
    echo "    slack text: italic markup around plain text (Slack shows the underscores)" >&2; ok=1
  fi
  return $ok
}
step "alertmanager templates render" templates_ok
# Inhibition, against a running Alertmanager 0.25 (which alerts each inhibit rule mutes).
step "alertmanager inhibition (scripts/monitoring/test_alertmanager.py)" \
  "$py" -m unittest -q scripts/monitoring/test_alertmanager.py

# --------------------------------------------------------------------------- docker compose
step "compose-spec JSON schema (check-jsonschema vendor.compose-spec)" \
  "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml

# Compose v1 (Debian's docker-compose 1.29) resolves the file as committed: it rejects v2-only
# keys such as a top-level `name:` (the project name comes from .env).
if command -v docker-compose >/dev/null 2>&1; then
  step "docker-compose 1.29 config" docker-compose --project-directory "$root" -f docker-compose.yml config -q
else
  echo "==> docker-compose 1.29 config: not run (docker-compose not installed: scripts/setup.sh installs it)"
  failures+=("docker-compose missing")
fi

# --------------------------------------------------------------------------- structure
step "dashboards up to date with scripts/monitoring/dashboards.py" "$py" scripts/monitoring/dashboards.py --check
step "gateway's RUNBOOK.html up to date with RUNBOOK.md" "$py" scripts/monitoring/runbook_html.py --check
step "structural checks (scripts/monitoring/check.py)" "$py" scripts/monitoring/check.py check
# The checks themselves: each structural check fails on a broken copy; name extraction rules.
step "tests of the checks (scripts/monitoring/test_check.py)" "$py" -m unittest scripts/monitoring/test_check.py

# The closing line CI reads.
checks_summary monitoring
