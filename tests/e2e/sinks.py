"""Stand-ins for the two places Alertmanager notifies: an SMTP server (aiosmtpd) and Slack's
incoming webhook (an HTTP server from pytest-httpserver, which wraps werkzeug).

Both keep every message in memory with the time it arrived, and can also write each message
to a directory (`<n>.eml` / `<n>.json`) so a developer running `scripts/stack.sh` can read them.

    python tests/e2e/sinks.py --dir .stack/sinks --smtp-port 11025 --webhook-port 18025
runs both until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

# The path Alertmanager posts to; written into the Slack secret file as http://host:port/<path>.
SLACK_PATH = "/services/T000/B000/e2e"


@dataclass
class Email:
    arrived: float  # time.time() when the DATA command completed
    subject: str
    text: str  # the text/plain part (what the `text:` template rendered)
    html: str
    raw: str

    def describe(self) -> str:
        return f"[{time.strftime('%H:%M:%S', time.localtime(self.arrived))}] Subject: {self.subject}\n{self.text}"


@dataclass
class SlackMessage:
    arrived: float
    body: dict
    raw: str

    def all_text(self) -> str:
        """Every human-readable string of the payload (text, attachments, blocks)."""
        parts: list[str] = []

        def walk(v):
            if isinstance(v, str):
                parts.append(v)
            elif isinstance(v, dict):
                for x in v.values():
                    walk(x)
            elif isinstance(v, list):
                for x in v:
                    walk(x)

        walk(self.body)
        return "\n".join(parts)

    def describe(self) -> str:
        return f"[{time.strftime('%H:%M:%S', time.localtime(self.arrived))}] {self.raw}"


@dataclass
class _Store:
    directory: Path | None
    items: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item, content: str, suffix: str) -> None:
        with self.lock:
            self.items.append(item)
            n = len(self.items)
        if self.directory is not None:
            (self.directory / f"{n:04d}{suffix}").write_text(content)

    def snapshot(self) -> list:
        with self.lock:
            return list(self.items)


class _SmtpHandler:
    def __init__(self, store: _Store) -> None:
        self.store = store

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook name)
        arrived = time.time()
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text_part = msg.get_body(preferencelist=("plain",))
        html_part = msg.get_body(preferencelist=("html",))
        self.store.add(
            Email(
                arrived=arrived,
                subject=str(msg["Subject"] or ""),
                text=text_part.get_content() if text_part else "",
                html=html_part.get_content() if html_part else "",
                raw=raw.decode("utf-8", "replace"),
            ),
            raw.decode("utf-8", "replace"),
            ".eml",
        )
        return "250 Message accepted for delivery"


class MailSink:
    """SMTP server on 127.0.0.1 (no TLS, no AUTH, as Alertmanager's committed config expects)."""

    def __init__(self, port: int, directory: Path | None = None) -> None:
        self.store = _Store(directory)
        self.port = port
        self.controller = Controller(_SmtpHandler(self.store), hostname="127.0.0.1", port=port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[Email]:
        return self.store.snapshot()


class SlackSink:
    """HTTP server on 127.0.0.1 answering like Slack's incoming webhook (200 `ok`)."""

    def __init__(self, port: int, directory: Path | None = None) -> None:
        self.store = _Store(directory)
        self.server = HTTPServer(host="127.0.0.1", port=port)
        self.server.expect_request(SLACK_PATH, method="POST").respond_with_handler(self._handle)

    def _handle(self, request: Request) -> Response:
        arrived = time.time()
        raw = request.get_data(as_text=True)
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"unparsable": raw}
        self.store.add(SlackMessage(arrived=arrived, body=body, raw=raw), raw, ".json")
        return Response("ok", status=200, content_type="text/plain")

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}{SLACK_PATH}"

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        if self.server.is_running():
            self.server.stop()

    @property
    def messages(self) -> list[SlackMessage]:
        return self.store.snapshot()

    def other_requests(self) -> list[str]:
        """Requests to any other path or method (pytest-httpserver answers them 500)."""
        return [f"{r.method} {r.path}" for r, _ in self.server.log if r.path != SLACK_PATH]


def main() -> int:
    parser = argparse.ArgumentParser(description="SMTP and Slack-webhook sinks writing messages to files")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--webhook-port", type=int, required=True)
    args = parser.parse_args()
    (args.dir / "email").mkdir(parents=True, exist_ok=True)
    (args.dir / "slack").mkdir(parents=True, exist_ok=True)
    mail = MailSink(args.smtp_port, args.dir / "email")
    slack = SlackSink(args.webhook_port, args.dir / "slack")
    mail.start()
    slack.start()
    print(f"sinks: smtp 127.0.0.1:{args.smtp_port} -> {args.dir / 'email'}, "
          f"slack webhook {slack.url} -> {args.dir / 'slack'}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    slack.stop()
    mail.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
