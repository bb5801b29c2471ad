#!/usr/bin/env bash
# The Open Inference Protocol (V2) client test: tests/v2/ drives the release build of the API on
# 127.0.0.1 with a real V2 client from PyPI (tritonclient[http], pinned in
# scripts/requirements-dev.txt) and checks its answers against /predict. Under a minute.
#
#   scripts/v2-client-test.sh [pytest args...]
#
# Needs scripts/setup.sh (.onnxruntime/, .venv/). Builds the API's release binary when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

py=.venv/bin/python
if [ ! -x "$py" ] || ! "$py" -c 'import pytest, requests, numpy, tritonclient.http' 2>/dev/null; then
  echo "v2 client test: .venv is missing the test dependencies; run scripts/setup.sh" >&2
  exit 1
fi
[ -x target/release/inference-api ] || cargo build --release --locked -p inference-api --bins

# pytest runs as a child that gets a SIGTERM/SIGINT sent to this script (its fixture then stops
# the API it started).
source scripts/lib/foreground.sh
run_child "$py" -m pytest tests/v2 -q -p no:cacheprovider -rs "$@"
exit "$status"
