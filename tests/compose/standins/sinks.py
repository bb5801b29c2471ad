#!/usr/bin/python3
"""Notification sinks for the compose test, standing in for images no registry gives here.

    /mailpit              SMTP on :1025; on :8025 the part of mailpit's HTTP API the test reads:
                          GET /readyz, GET /api/v1/messages, GET /api/v1/message/<ID>
    /mailpit slack        a Slack incoming webhook on :8025: any POST is recorded and answered
                          200 `ok`, as Slack does; GET /api/v1/messages lists them
    /mailpit readyz       exit 0 when the sink in this container answers (the compose health check)

Messages are kept in memory. Only the Python standard library and Debian's python3-aiosmtpd.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HTTP_PORT = 8025
SMTP_PORT = 1025
MAX_MESSAGES = 1000

_lock = threading.Lock()
_messages: list[dict] = []


def _store(message: dict) -> None:
    with _lock:
        message["ID"] = str(len(_messages) + 1)
        message["Created"] = datetime.now(timezone.utc).isoformat()
        _messages.append(message)
        del _messages[:-MAX_MESSAGES]


class _SmtpHandler:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook name)
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        _store(
            {
                "From": {"Address": envelope.mail_from},
                "To": [{"Address": a} for a in envelope.rcpt_tos],
                "Subject": str(msg["Subject"] or ""),
                "Text": text.get_content() if text else "",
                "HTML": html.get_content() if html else "",
            }
        )
        return "250 Message accepted for delivery"


class _Http(BaseHTTPRequestHandler):
    slack = False

    def _reply(self, status: int, body, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server hook name)
        with _lock:
            messages = list(_messages)
        if self.path == "/readyz":
            self._reply(200, "ok", "text/plain")
        elif self.path.startswith("/api/v1/messages"):
            summary = [{k: v for k, v in m.items() if k not in ("Text", "HTML")} for m in messages]
            # mailpit lists the newest first.
            self._reply(200, {"total": len(messages), "count": len(messages), "messages": summary[::-1]})
        elif self.path.startswith("/api/v1/message/"):
            wanted = self.path.rsplit("/", 1)[1]
            found = [m for m in messages if m["ID"] == wanted]
            self._reply(200, found[0]) if found else self._reply(404, {"error": "not found"})
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self):  # noqa: N802
        if not self.slack:
            self._reply(404, {"error": "not found"})
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"unparsable": raw}
        _store({"Path": self.path, "Body": body})
        self._reply(200, "ok", "text/plain")

    def log_message(self, fmt, *args):  # one line per request on stderr, as docker logs shows
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} {self.command} {self.path}\n")


def main(argv: list[str]) -> int:
    if argv[:1] == ["readyz"]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/readyz", timeout=3) as r:
                return 0 if r.status == 200 else 1
        except OSError:
            return 1
    # PID 1 in its container: stop at once on `docker stop`.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    _Http.slack = argv[:1] == ["slack"]
    if not _Http.slack:
        from aiosmtpd.controller import Controller

        Controller(_SmtpHandler(), hostname="0.0.0.0", port=SMTP_PORT).start()
    print(f"sink ({'slack webhook' if _Http.slack else 'smtp :1025'}) http :{HTTP_PORT}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", HTTP_PORT), _Http).serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
