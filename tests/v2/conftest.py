"""Fixtures of the Open Inference Protocol (V2) client test: the release API on a free port of
127.0.0.1, its held-out rows and what `/predict` answers for them."""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

import harness  # noqa: E402  (the end-to-end test's process and port helpers)
from harness import MODEL_DIR, Process, free_port, http_ok, wait_for  # noqa: E402

STARTUP_TIMEOUT = 30.0
MANIFEST = json.loads((MODEL_DIR / "model.json").read_text())


@dataclass
class Api:
    url: str
    port: int
    hostport: str  # what tritonclient takes: host:port, no scheme
    process: Process

    def errors(self, route: re.Pattern[str] | str) -> float:
        """`inference_errors_total` summed over every kind, for the route templates matching `route`."""
        pattern = re.compile(re.escape(route)) if isinstance(route, str) else route
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        total = 0.0
        # Route templates hold braces ({name}): the label set is everything up to the last `} `.
        for labels, value in re.findall(r"^inference_errors_total\{(.*)\} (\S+)$", text, flags=re.M):
            found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels))
            if pattern.fullmatch(found.get("route", "")):
                total += float(value)
        return total

    def log_lines(self, needle: str) -> list[str]:
        return [line for line in self.process.log.read_text(errors="replace").splitlines() if needle in line]


@pytest.fixture(scope="session")
def api(request):
    binary = harness.RELEASE / "inference-api"
    if not binary.is_file():
        pytest.fail(f"missing {binary}: run `cargo build --release -p inference-api` (scripts/v2-client-test.sh does)")
    if not harness.ONNXRUNTIME.is_file():
        pytest.fail(f"missing {harness.ONNXRUNTIME}: run scripts/fetch-onnxruntime.sh")
    work = Path(tempfile.mkdtemp(prefix="modelwatch-v2-"))
    port = free_port()
    process = Process("inference-api", [binary], work / "inference-api.log", harness.api_env(port))

    def teardown():
        process.stop()
        shutil.rmtree(work, ignore_errors=True)

    request.addfinalizer(teardown)
    url = f"http://127.0.0.1:{port}"
    wait_for("inference-api GET /ready = 200", lambda: http_ok(f"{url}/ready"), STARTUP_TIMEOUT,
             detail=lambda: process.tail())
    return Api(url, port, f"127.0.0.1:{port}", process)


@dataclass
class HeldOut:
    rows: list[list[float]]  # as read from samples.csv (Python floats)
    class_index: list[int]  # what /predict answers, per row
    probabilities: list[list[float]]  # per row, in the manifest's class order


@pytest.fixture(scope="session")
def held_out(api) -> HeldOut:
    """Every held-out row of samples.csv, and `/predict`'s answer for each (one batch)."""
    with (MODEL_DIR / "samples.csv").open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        assert header[:-1] == MANIFEST["features"], "samples.csv columns are not the manifest's features"
        rows = [[float(v) for v in line[:-1]] for line in reader]
    assert len(rows) == MANIFEST["validation"]["rows"], "samples.csv is not the whole hold-out set"
    r = requests.post(f"{api.url}/predict", json={"instances": rows}, timeout=30)
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert len(predictions) == len(rows)
    classes = MANIFEST["classes"]
    return HeldOut(
        rows=rows,
        class_index=[p["class_index"] for p in predictions],
        probabilities=[[p["probabilities"][c] for c in classes] for p in predictions],
    )
