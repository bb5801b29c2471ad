#!/usr/bin/env bash
# Fetches the pinned ONNX Runtime shared library (from the official PyPI wheel) into
# .onnxruntime/ at the repository root. Idempotent: does nothing when the library is
# already there with the expected checksum.
#
#   scripts/fetch-onnxruntime.sh [DEST_DIR]
#
# The API and tests look for .onnxruntime/libonnxruntime.so.1.31.1 by default
# (APP_MODEL__ONNXRUNTIME_PATH overrides it). docker/Dockerfile runs this same script.
set -euo pipefail

ORT_VERSION="1.31.1"
ORT_SHA256="fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3"
LIB="libonnxruntime.so.${ORT_VERSION}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$root/.onnxruntime}"
mkdir -p "$dest"

if [ -f "$dest/$LIB" ] && echo "$ORT_SHA256  $dest/$LIB" | sha256sum --check --status; then
  echo "onnxruntime $ORT_VERSION already present: $dest/$LIB"
  exit 0
fi

python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The .so is identical across Python tags; pin one so the local Python does not matter.
"$python" -m pip download "onnxruntime==${ORT_VERSION}" --no-deps --only-binary=:all: \
  --python-version 3.11 --platform manylinux_2_28_x86_64 --no-cache-dir -q -d "$work"
wheel="$(ls "$work"/onnxruntime-"${ORT_VERSION}"-*.whl)"
"$python" - "$wheel" "$work" "$LIB" <<'PY'
import sys, zipfile
wheel, out, lib = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    with z.open(f"onnxruntime/capi/{lib}") as src, open(f"{out}/{lib}", "wb") as dst:
        dst.write(src.read())
PY
echo "$ORT_SHA256  $work/$LIB" | sha256sum --check --status || {
  echo "checksum mismatch for $LIB from the onnxruntime==$ORT_VERSION wheel" >&2
  exit 1
}
mv "$work/$LIB" "$dest/$LIB"
echo "onnxruntime $ORT_VERSION fetched: $dest/$LIB"
