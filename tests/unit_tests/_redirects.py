"""A loopback HTTP server for redirect, cookie and proxy tests (the scripted TGI server does not redirect)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class RecordingRedirects:
    """Answers like TGI's ``/generate`` on ``/final*`` paths and on absolute-form request lines (as a forward
    proxy receives them); every other path redirects (307) to ``target`` + path, or to its own ``/final`` + path.

    Every request's path (the absolute URL for a proxied one) and headers are recorded in ``requests``.
    """

    def __init__(self, reply: str = "same-origin") -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.target = ""
        self.reply = reply
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path.startswith(("/final", "http://", "https://")):
                    body = json.dumps({"generated_text": outer.reply}).encode()
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(307)
                self.send_header("location", (outer.target or f"{outer.url}/final") + self.path)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def seen(self) -> list[tuple[str, str | None]]:
        """``(path, authorization header)`` of every request."""
        return [(path, headers.get("authorization")) for path, headers in self.requests]

    def __enter__(self) -> RecordingRedirects:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
