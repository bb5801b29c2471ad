#!/usr/bin/env bash
# End-to-end test (issue 6): the release binaries, Debian's Prometheus and Alertmanager with the
# repository's own configuration, an SMTP sink and a Slack-webhook sink, all on 127.0.0.1 with
# free ports in a temporary directory. See docs/e2e.md.
#
#   scripts/e2e.sh [pytest args...]        e.g. scripts/e2e.sh -k errors -s
#
# Needs scripts/setup.sh (Debian packages, .onnxruntime/, .venv/ with scripts/requirements-dev.txt).
# Builds the three release binaries when one is missing (set E2E_BUILD=1 to always rebuild).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

py=.venv/bin/python
if [ ! -x "$py" ] || ! "$py" -c 'import pytest, aiosmtpd, pytest_httpserver, requests, yaml' 2>/dev/null; then
  echo "e2e: .venv is missing the test dependencies; run scripts/setup.sh" >&2
  exit 1
fi

missing=0
for bin in inference-api exporter traffic-gen; do
  [ -x "target/release/$bin" ] || missing=1
done
if [ "$missing" = 1 ] || [ "${E2E_BUILD:-0}" = 1 ]; then
  echo "e2e: building release binaries"
  cargo build --release --workspace --bins
fi

start=$(date +%s)
# pytest runs as a child that gets a SIGTERM/SIGINT sent to this script (its fixtures then stop
# every process they started and remove the temporary directory).
source scripts/lib/foreground.sh
run_child "$py" -m pytest tests/e2e -x -q -p no:cacheprovider -rs "$@"
echo "e2e: total $(( $(date +%s) - start )) s, exit $status"
exit "$status"
