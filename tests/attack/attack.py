"""The hostile-client suite: replays the attacks of docs/security.md against release builds of the
inference API and the exporter on 127.0.0.1, and checks what must hold. Every loop is bounded in
count and time. Prints one line per attack and `N passed, N failed`.

    scripts/attack.sh            (builds the release binaries when missing)
"""

from __future__ import annotations

import gzip
import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from harness import ONNXRUNTIME, free_port, http_ok, wait_for  # noqa: E402  (the end-to-end test's helpers)

RELEASE = ROOT / "target" / "release"
BUNDLE = ROOT / "models" / "breast-cancer"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def first_row() -> list[float]:
    line = (BUNDLE / "samples.csv").read_text().splitlines()[1]
    return [float(v) for v in line.split(",")[:-1]]


class Server:
    def __init__(self, binary: str, env: dict[str, str], health: str) -> None:
        self.port = free_port()
        full = dict(os.environ, APP_SERVER__PORT=str(self.port), APP_SERVER__HOST="127.0.0.1",
                    RUST_LOG="warn", **env)
        self.proc = subprocess.Popen([str(RELEASE / binary), "serve"], cwd=ROOT, env=full,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(f"{binary} {health} = 200", lambda: http_ok(self.url + health), 30, interval=0.1)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def raw_request(port: int, data: bytes, read_timeout: float = 10) -> tuple[int, dict]:
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before the whole body is sent
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    text = b"".join(chunks).decode("utf-8", "replace")
    status = int(text.split(" ", 2)[1]) if text.startswith("HTTP/") else 0
    body = text.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in text else ""
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"raw": body[:200]}


def gzip_bomb(decompressed: int) -> bytes:
    """`decompressed` bytes of zeros, gzipped (about 1 KB per MB)."""
    out = io.BytesIO()
    block = b"\0" * (1 << 20)
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as g:
        for _ in range(decompressed // len(block)):
            g.write(block)
    return out.getvalue()


class Suite:
    def __init__(self) -> None:
        self.passed: list[str] = []
        self.failed: list[str] = []

    def attack(self, name: str, fn: Callable[[], str]) -> None:
        t0 = time.monotonic()
        try:
            detail = fn()
        except (AssertionError, OSError, requests.RequestException, RuntimeError) as e:
            self.failed.append(name)
            print(f"FAIL  {name} ({time.monotonic() - t0:.1f} s): {e}", flush=True)
            return
        self.passed.append(name)
        print(f"ok    {name} ({time.monotonic() - t0:.1f} s): {detail}", flush=True)


def api_attacks(suite: Suite) -> None:
    api = Server("inference-api", {"APP_MODEL__ONNXRUNTIME_PATH": str(ONNXRUNTIME)}, "/ready")
    row = first_row()
    predict = json.dumps({"features": row}).encode()
    try:
        def gzip_bombs() -> str:
            bomb = gzip_bomb(1 << 30)
            head = (f"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    f"Content-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n\r\n").encode()
            idle = rss_mb(api.proc.pid)
            status, body = raw_request(api.port, head + bomb)
            assert status == 415, f"one 1 GB gzip bomb: {status} {body}"
            peak = rss_mb(api.proc.pid)
            with ThreadPoolExecutor(32) as pool:
                answers = list(pool.map(lambda _: raw_request(api.port, head + bomb), range(32)))
                peak = max(peak, rss_mb(api.proc.pid))
            assert all(s == 415 for s, _ in answers), {s for s, _ in answers}
            peak = max(peak, rss_mb(api.proc.pid))
            assert peak - idle < 50, f"RSS {idle:.0f} MB idle, {peak:.0f} MB under the bombs"
            return f"{len(bomb) / 1e6:.1f} MB gzip of 1 GB, once and 32 at once: 415, RSS {idle:.0f} -> {peak:.0f} MB"

        def stalled_senders() -> str:
            # Each declares a body just under the limit (2 MiB), then stalls or trickles.
            head = (b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 2000000\r\n\r\n{\"features\":[")
            idle = rss_mb(api.proc.pid)
            socks = []
            for _ in range(300):
                s = socket.create_connection(("127.0.0.1", api.port), timeout=10)
                s.sendall(head)
                socks.append(s)
            # A byte a second from 50 of them until they are answered; normal clients meanwhile.
            answers: dict[socket.socket, bytes] = {}

            def collect_answers(wait: float) -> None:
                pending = [s for s in socks if s not in answers]
                if not pending:
                    return
                readable, _, _ = select.select(pending, [], [], wait)
                for s in readable:
                    try:
                        answers[s] = s.recv(4096)
                    except OSError as e:
                        answers[s] = f"error {e}".encode()

            statuses = []
            peak = idle
            deadline = time.monotonic() + 10
            next_trickle = time.monotonic() + 1
            with requests.Session() as client:
                while time.monotonic() < deadline:
                    r = client.post(api.url + "/predict", data=predict,
                                    headers={"content-type": "application/json"}, timeout=10)
                    statuses.append(r.status_code)
                    collect_answers(0)
                    peak = max(peak, rss_mb(api.proc.pid))
                    if time.monotonic() >= next_trickle:
                        next_trickle += 1
                        for s in socks[:50]:
                            if s not in answers:
                                try:
                                    s.sendall(b" ")
                                except OSError:
                                    pass
                    time.sleep(0.02)
            collect_answers(5)
            answered = sum(a.startswith(b"HTTP/1.1 408") for a in answers.values())
            for s in socks:
                s.close()
            ok = statuses.count(200)
            assert ok == len(statuses), f"{ok} of {len(statuses)} normal predictions got 200: {set(statuses)}"
            assert answered == 300, f"{answered} of 300 slow senders got 408"
            assert peak - idle < 50, f"RSS {idle:.0f} MB idle, {peak:.0f} MB with the slow senders"
            return (f"300 stalled/trickling senders declaring 2 MB each: all 408, RSS {idle:.0f} -> {peak:.0f} MB; "
                    f"{ok}/{len(statuses)} normal predictions 200 meanwhile")

        def bad_encodings() -> str:
            codes = []
            for enc in ("br", "zstd", "foo", "deflate"):
                head = (f"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                        f"Content-Encoding: {enc}\r\nContent-Length: {len(predict)}\r\n\r\n").encode()
                status, body = raw_request(api.port, head + predict)
                assert status == 415 and body["error"]["code"] == "unsupported_media_type", (enc, status, body)
                codes.append(status)
            return f"br, zstd, foo, deflate: {codes}"

        def truncated_body() -> str:
            head = (b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 500\r\n\r\n{\"features\": [1,")
            status, body = raw_request(api.port, head)
            message = body.get("error", {}).get("message", "")
            assert status == 400 and "Custom" not in message and "kind" not in message, (status, body)
            return f"400 {message!r}"

        def encoded_path() -> str:
            before = requests.get(api.url + "/metrics", timeout=5).text.count('route="unmatched"')
            head = (f"POST /%70redict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(predict)}\r\n\r\n").encode()
            status, _ = raw_request(api.port, head + predict)
            after = requests.get(api.url + "/metrics", timeout=5).text.count('route="unmatched"')
            assert status == 200 and after == before, (status, before, after)
            return "POST /%70redict: 200, counted under route=\"/predict\""

        suite.attack("API: gzip bombs are refused unread", gzip_bombs)
        suite.attack("API: slow senders cannot take the admission slots", stalled_senders)
        suite.attack("API: unsupported Content-Encoding is 415", bad_encodings)
        suite.attack("API: no internal error text in a truncated body's answer", truncated_body)
        suite.attack("API: a percent-encoded path is counted under its route", encoded_path)
    finally:
        api.stop()


def exporter_attacks(suite: Suite) -> None:
    for what in ("fifo", "/dev/zero", "100 MB"):
        with tempfile.TemporaryDirectory() as tmp:
            bundle = Path(tmp) / "bundle"
            bundle.mkdir()
            (bundle / "model.onnx").write_bytes((BUNDLE / "model.onnx").read_bytes())
            manifest = bundle / "model.json"
            if what == "fifo":
                os.mkfifo(manifest)
            elif what == "/dev/zero":
                manifest.symlink_to("/dev/zero")
            else:
                with open(manifest, "wb") as f:
                    f.truncate(100 * 1024 * 1024)
            exporter = Server("exporter", {"APP_COLLECTORS__MODEL_REPOSITORIES": str(bundle.parent)}, "/health")
            try:
                def hostile_manifest() -> str:
                    idle = rss_mb(exporter.proc.pid)
                    t0 = time.monotonic()
                    with ThreadPoolExecutor(50) as pool:
                        texts = list(pool.map(lambda _: requests.get(exporter.url + "/metrics", timeout=10).text,
                                              range(50)))
                    scrapes = time.monotonic() - t0
                    t0 = time.monotonic()
                    health = requests.get(exporter.url + "/health", timeout=5).status_code
                    health_s = time.monotonic() - t0
                    peak = rss_mb(exporter.proc.pid)
                    for text in texts:
                        assert 'exporter_collector_success{collector="model_artifacts"} 0' in text
                        assert 'exporter_collector_success{collector="memory"} 1' in text
                    assert health == 200 and health_s < 0.1, (health, health_s)
                    assert peak - idle < 50, (idle, peak)
                    return (f"50 concurrent scrapes in {scrapes:.2f} s, model_artifacts 0, others 1; "
                            f"/health {health_s * 1000:.0f} ms; RSS {idle:.0f} -> {peak:.0f} MB")

                suite.attack(f"exporter: model.json is a {what}", hostile_manifest)
            finally:
                exporter.stop()


def main() -> int:
    for binary in ("inference-api", "exporter"):
        if not (RELEASE / binary).exists():
            print(f"attack: {RELEASE / binary} missing: cargo build --release", file=sys.stderr)
            return 1
    started = time.monotonic()
    suite = Suite()
    api_attacks(suite)
    exporter_attacks(suite)
    print(f"attack: {time.monotonic() - started:.0f} s")
    print(f"{len(suite.passed)} passed, {len(suite.failed)} failed")
    return 0 if not suite.failed else 1


if __name__ == "__main__":
    sys.exit(main())
