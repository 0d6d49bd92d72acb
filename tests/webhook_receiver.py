"""A real HTTP webhook receiver on 127.0.0.1 for tests: records every request and answers with a
scripted sequence of statuses (a 3xx answer redirects to `redirect_to`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


class Receiver:
    """`with Receiver([500, 500, 200]) as r:` answers 500, 500, then `default` (200) forever.

    `on_request` (if set) runs in the server thread before the answer is sent, e.g. to let
    time pass on a FrozenClock while the request is "in flight".
    """

    def __init__(
        self,
        statuses: Iterable[int] = (),
        default: int = 200,
        redirect_to: str | None = None,
    ) -> None:
        self._statuses = list(statuses)
        self.default = default
        self._redirect_to = redirect_to
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self.on_request: Callable[[Received], None] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what tests use --------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def respond(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, then `default`."""
        with self._lock:
            self._statuses = list(statuses)

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def posts(self, path: str | None = None) -> list[Received]:
        return [r for r in self.requests if r.method == "POST" and (path is None or r.path == path)]

    # --- server side -----------------------------------------------------------------------
    def _next_status(self) -> int:
        with self._lock:
            return self._statuses.pop(0) if self._statuses else self.default

    def _record(self, received: Received) -> None:
        with self._lock:
            self._received.append(received)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                received = Received(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                receiver._record(received)
                if receiver.on_request is not None:
                    receiver.on_request(received)
                status = receiver._next_status()
                payload = b'{"ok":true}' if 200 <= status < 300 else b'{"ok":false}'
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver._redirect_to or receiver.url("/moved"))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_GET = do_PUT = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
