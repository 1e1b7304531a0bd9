"""Small real HTTP backends on loopback: each answers with its name, counts the requests it got,
and answers /health with 200 or 503 as the test sets it."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class StubBackends:
    def __init__(self, names: list[str]) -> None:
        self.hits: Counter[str] = Counter()
        self.healthy: dict[str, bool] = {name: True for name in names}
        self.ports: dict[str, int] = {}
        self._servers: list[ThreadingHTTPServer] = []
        self._lock = threading.Lock()
        for name in names:
            server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(name))
            server.daemon_threads = True
            self.ports[name] = server.server_address[1]
            self._servers.append(server)
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def reset(self) -> None:
        with self._lock:
            self.hits.clear()

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def _handler(self, name: str):
        backends = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's algorithm and the
            # peer's delayed ACK add 40 ms to every request on a kept-alive connection.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.startswith("/health"):
                    code = 200 if backends.healthy[name] else 503
                else:
                    code = 200
                    with backends._lock:
                        backends.hits[name] += 1
                body = name.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        return Handler
