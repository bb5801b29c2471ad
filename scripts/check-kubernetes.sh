#!/usr/bin/env bash
# Offline checks of the Kubernetes manifests (deploy/kubernetes/, docs/kubernetes.md). No cluster
# is needed or used: nothing is applied anywhere. Runs every check, prints each result, exits 1
# if any failed.
#
#   scripts/check-kubernetes.sh
#
# Needs: kubectl with its built-in kustomize (preinstalled on the project's machines; else Debian
# `kubernetes-client`, which scripts/setup.sh installs), promtool and amtool (as
# scripts/check-monitoring.sh), and PyYAML + kubernetes-validate in .venv (scripts/setup.sh
# installs them from scripts/requirements-dev.txt; MONITORING_VENV points elsewhere).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="${MONITORING_VENV:-$root/.venv}"
py="$venv/bin/python"
# The Kubernetes version the resources are validated against (kubernetes-validate's schemas).
k8s_version=1.32

source scripts/lib/checks.sh
need kubectl "apt-get install --no-install-recommends kubernetes-client (or run scripts/setup.sh)"
need promtool "apt-get install --no-install-recommends prometheus"
need amtool "apt-get install --no-install-recommends prometheus-alertmanager"
if ! "$py" -c "import yaml, kubernetes_validate" 2>/dev/null; then
  echo "missing PyYAML/kubernetes-validate in $venv: run scripts/setup.sh" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "kubectl $(kubectl version --client 2>/dev/null | tr '\n' ' ')"

# --------------------------------------------------------------------------- generated files
step "generated files up to date (scripts/kubernetes/generate.py --check)" \
  "$py" scripts/kubernetes/generate.py --check

# --------------------------------------------------------------------------- render
# kustomize 5 notes on stderr that `bases:` is deprecated (kept for kubectl 1.20's kustomize,
# see overlays/production/kustomization.yaml); any other message is shown.
render() {  # render <kustomization dir> <output>
  kubectl kustomize "$1" >"$2" 2>"$tmp/stderr" || { cat "$tmp/stderr" >&2; return 1; }
  grep -v "Warning: 'bases' is deprecated" "$tmp/stderr" >&2
  [ -s "$2" ] && echo "    $(grep -c '^kind:' "$2") resources"
}
overlays=(base overlays/production overlays/demo)
for dir in "${overlays[@]}"; do
  step "kubectl kustomize deploy/kubernetes/$dir" render "deploy/kubernetes/$dir" "$tmp/${dir##*/}.yaml"
done

# --------------------------------------------------------------------------- validate
step "Kubernetes $k8s_version schemas (kubernetes-validate, strict) + Operator kinds + references" \
  "$py" scripts/kubernetes/check.py validate --kubernetes-version "$k8s_version" \
  "$tmp/base.yaml" "$tmp/production.yaml" "$tmp/demo.yaml"

# --------------------------------------------------------------------------- rules
# The rules as the Operator gets them: spec.groups of the rendered PrometheusRules, written back
# to rule files next to copies of prometheus/tests/ (which load ../rules/*.yml).
step "extract the rendered PrometheusRules" \
  "$py" scripts/kubernetes/check.py extract-rules "$tmp/production.yaml" "$tmp/prom"
step "promtool check rules (rendered PrometheusRules)" bash -c 'cd "$1" && promtool check rules rules/*.yml' _ "$tmp/prom"
step "promtool test rules (prometheus/tests/*.yml against the rendered rules)" \
  bash -c 'cd "$1" && promtool test rules tests/*.yml' _ "$tmp/prom"

# --------------------------------------------------------------------------- Alertmanager
alertmanager_ok() {
  local ok=0
  "$py" scripts/kubernetes/check.py alertmanager "$tmp/am" || return 1
  amtool check-config "$tmp/am/alertmanager.yml" || ok=1
  # The same routing tree as the compose configuration.
  if ! diff <(amtool config routes --config.file=alertmanager/alertmanager.yml 2>/dev/null) \
            <(amtool config routes --config.file="$tmp/am/alertmanager.yml" 2>/dev/null) >&2; then
    echo "    the values fragment routes differently from alertmanager/alertmanager.yml" >&2; ok=1
  fi
  # docs/kubernetes.md's way to set the two base URLs: a later template file redefining them.
  printf '%s\n' '{{ define "modelwatch.runbook_base" }}https://runbooks.example.org/{{ end }}' \
    '{{ define "modelwatch.grafana_url" }}https://grafana.example.org{{ end }}' >"$tmp/am/templates/zz-urls.tmpl"
  local out
  out="$(amtool template render --template.glob="$tmp/am/templates/*.tmpl" \
    --template.data=alertmanager/tests/firing.json --template.text='{{ template "modelwatch.email.text" . }}')" || ok=1
  for needle in "Runbook: https://runbooks.example.org/RUNBOOK.md#higherrorrate" \
                "Dashboard: https://grafana.example.org/d/modelwatch-inference-api"; do
    [[ "$out" == *"$needle"* ]] || { echo "    URL override: missing '$needle'" >&2; ok=1; }
  done
  return $ok
}
step "Alertmanager values fragment: amtool check-config, same routes, URL override" alertmanager_ok

# --------------------------------------------------------------------------- compose parity
step "same ports, paths, jobs, images, env, mounts, probes, rules, dashboards as the compose stack" \
  "$py" scripts/kubernetes/check.py consistency "$tmp/demo.yaml"
# The checks themselves: each fails on a broken copy of the repository.
step "tests of the checks (scripts/kubernetes/test_check.py)" \
  "$py" -m unittest scripts/kubernetes/test_check.py

# The closing line CI reads.
checks_summary kubernetes
