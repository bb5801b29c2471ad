#!/usr/bin/env bash
# Validates the inference API's OpenAPI document as OpenAPI 3.1 with openapi-spec-validator
# (pinned in scripts/requirements-dev.txt, installed into .venv by scripts/setup.sh). The
# document is the one `inference-api openapi` prints, the same bytes `GET /openapi.json` serves.
#
#   scripts/check-openapi.sh [path/to/inference-api]    (default: cargo run -p inference-api)
#
# OPENAPI_VENV points at another venv.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
validator="${OPENAPI_VENV:-$root/.venv}/bin/openapi-spec-validator"
[ -x "$validator" ] || { echo "missing $validator: run scripts/setup.sh" >&2; exit 1; }

doc="$(mktemp --suffix=.json)"
trap 'rm -f "$doc"' EXIT
if [ $# -gt 0 ]; then
  "$1" openapi >"$doc"
else
  cargo run -q --locked -p inference-api -- openapi >"$doc"
fi
"$validator" --schema 3.1 "$doc"
