#!/usr/bin/env bash
# Every test of the project, as CI runs it (.ci/run = scripts/setup.sh && scripts/test.sh).
# Needs scripts/setup.sh once. Fails on the first failing stage.
set -euo pipefail
cd "$(dirname "$0")/.."

stage() { printf '\n==> %s\n' "$*"; }

ls .onnxruntime/libonnxruntime.so.* >/dev/null 2>&1 || { echo "ONNX Runtime missing: run scripts/setup.sh" >&2; exit 1; }
[ -x .venv/bin/python ] || { echo ".venv missing: run scripts/setup.sh" >&2; exit 1; }

stage "format"
cargo fmt --all --check

stage "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

stage "unit and integration tests"
cargo nextest run --workspace --locked --no-fail-fast

stage "monitoring configuration checks"
scripts/check-monitoring.sh

stage "Kubernetes manifest checks (offline: rendered and validated, applied to no cluster)"
scripts/check-kubernetes.sh

stage "release binaries"
cargo build --release --locked --workspace --bins

stage "OpenAPI document (openapi-spec-validator, OpenAPI 3.1)"
scripts/check-openapi.sh target/release/inference-api

stage "fuzz the parsers (crates/fuzz: seed 1, 200,000 inputs per target)"
target/release/fuzz

stage "attack suite (release builds)"
scripts/attack.sh

stage "Open Inference Protocol (V2) with a real V2 client (release build)"
scripts/v2-client-test.sh

stage "end to end"
scripts/e2e.sh

stage "compose stack under Docker"
scripts/compose-test.sh
