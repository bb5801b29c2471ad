#!/usr/bin/env bash
# The hostile-client suite (tests/attack/attack.py, docs/security.md) against release builds of
# the inference API and the exporter on 127.0.0.1. About a minute; prints `N passed, N failed`.
#
#   scripts/attack.sh
#
# Needs scripts/setup.sh (.onnxruntime/, .venv/). Builds the release binaries when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for bin in inference-api exporter; do
  [ -x "target/release/$bin" ] || { cargo build --release --locked -p inference-api -p exporter --bins; break; }
done
exec .venv/bin/python -u tests/attack/attack.py
