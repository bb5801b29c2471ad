#!/usr/bin/env bash
# The compose test: docker-compose.yml built and run for real in the Docker engine
# (tests/compose/compose_test.py says what it checks). Makes the base and stand-in images it needs
# when missing (tests/compose/images.sh: a few minutes the first time, seconds after), builds the
# project's images with docker/Dockerfile (about 10 minutes cold, cached after), runs the stack
# without Grafana under the project name modelwatch-test on the default ports, and always tears
# it down. Prints `N passed, N failed`.
#
#   scripts/compose-test.sh
#
# Needs scripts/setup.sh (debootstrap, docker-compose, .venv) and a running Docker daemon.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

docker info >/dev/null 2>&1 || { echo "compose test: the Docker daemon does not answer" >&2; exit 1; }
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null \
  || { echo "compose test: neither 'docker compose' nor docker-compose is installed: run scripts/setup.sh" >&2; exit 1; }
py=.venv/bin/python
"$py" -c 'import requests' 2>/dev/null || { echo "compose test: .venv missing: run scripts/setup.sh" >&2; exit 1; }

start=$SECONDS
tests/compose/images.sh
echo "compose test: base and stand-in images ready in $(( SECONDS - start )) s"
# A child that gets a SIGTERM/SIGINT sent to this script, and then tears the stack down.
source scripts/lib/foreground.sh
run_child "$py" -u tests/compose/compose_test.py
echo "compose test: total $(( SECONDS - start )) s, exit $status"
exit "$status"
