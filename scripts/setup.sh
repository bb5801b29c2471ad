#!/usr/bin/env bash
# One-time setup of a Debian bookworm machine (or CI) for building, testing and benchmarking:
#   - Debian packages: Prometheus 2.42 + promtool, Alertmanager 0.25 + amtool, wrk, node_exporter (bench),
#     docker-compose 1.29 and debootstrap (the compose test; the Docker daemon itself must be running),
#     kubernetes-client where no kubectl is installed (its kustomize renders deploy/kubernetes/)
#   - the pinned ONNX Runtime library (.onnxruntime/, via scripts/fetch-onnxruntime.sh)
#   - a Python venv (.venv/) with the tools the checks use (scripts/requirements-dev.txt)
# Idempotent; needs root (or sudo) for apt-get. Non-interactive.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo -E)
packages=(prometheus prometheus-alertmanager wrk prometheus-node-exporter curl python3-venv docker-compose debootstrap)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# kubectl (and its built-in kustomize) for scripts/check-kubernetes.sh: any installed one will do
# (the project's machines come with kubectl 1.32); else Debian's, 1.20, which renders the same.
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # dpkg's temporary folder can vanish mid-install on these machines; give it a private one.
  tmp=$(mktemp -d); export TMPDIR=$tmp
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  rm -rf "$tmp"; unset TMPDIR
fi
# The Debian packages may start daemons on hosts with systemd; the project runs its own copies.
for svc in prometheus prometheus-alertmanager prometheus-node-exporter; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    "${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
done

scripts/fetch-onnxruntime.sh

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements-dev.txt

command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
echo "setup done"
