#!/usr/bin/env bash
# The whole modelwatch stack on 127.0.0.1 without Docker, long-running: the release binaries
# (inference API, exporter, traffic generator with `mixed` traffic), Debian's Prometheus and
# Alertmanager with the repository's configuration, and SMTP/Slack sinks that store what they
# receive as files. The same processes as the end-to-end test (tests/e2e/). See docs/e2e.md.
#
#   scripts/stack.sh up       start, print the addresses (state, logs, notifications in .stack/)
#   scripts/stack.sh status   what runs where
#   scripts/stack.sh reload   apply edits of prometheus/ and alertmanager/ (re-render + reload)
#   scripts/stack.sh down     stop everything `up` started
#
# Environment: STACK_PORT_<API|EXPORTER|TRAFFIC|PROMETHEUS|ALERTMANAGER|SMTP|WEBHOOK>,
# STACK_SCRAPE_INTERVAL / STACK_EVALUATION_INTERVAL (default 5s), STACK_SCENARIO (mixed),
# STACK_RATE (10 req/s), STACK_DIR (.stack).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

py=.venv/bin/python
if [ ! -x "$py" ] || ! "$py" -c 'import aiosmtpd, pytest_httpserver, requests, yaml' 2>/dev/null; then
  echo "stack: .venv is missing its dependencies; run scripts/setup.sh" >&2
  exit 1
fi
if [ "${1:-}" = up ]; then
  for bin in inference-api exporter traffic-gen; do
    if [ ! -x "target/release/$bin" ]; then
      echo "stack: building release binaries"
      cargo build --release --workspace --bins
      break
    fi
  done
fi
exec "$py" tests/e2e/stackctl.py "$@"
