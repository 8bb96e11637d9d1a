"""The HTTP plumbing every local emulator shares (tests and ``make demo`` only).

A threaded server on 127.0.0.1 (an ephemeral port unless one is given) that hands each request to
the fake's ``respond`` and writes the answer with a ``Content-Length``. Request lines are never logged:
their paths and query strings can hold email addresses or API keys.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Answer = tuple[int, dict[str, str], bytes]


class LocalServer:
    """Mixin: ``start()`` / ``stop()`` / ``with`` for a fake that implements ``respond`` and ``served_at``."""

    thread_name = "fake-server"
    _host: str = "127.0.0.1"
    _port: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """One HTTP request (path as sent, query string included) → status, headers, payload."""
        raise NotImplementedError

    def served_at(self, host: str, port: int) -> None:
        """Called once the port is bound: the fake sets its ``base_url``."""
        raise NotImplementedError

    def http_date(self) -> str | None:
        """The ``Date`` header to send (a fake clock); None: the real time."""
        return None

    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are written separately: avoid 40 ms stalls

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, headers, payload = fake.respond(
                    self.command, self.path, dict(self.headers.items()), raw
                )
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() != "date":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def date_time_string(self, timestamp: float | None = None) -> str:
                return fake.http_date() or super().date_time_string(timestamp)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.served_at(str(host), int(port))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=self.thread_name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
