"""Stub model servers for `make demo`: one tiny HTTP server per deployment, each answering with
its deployment's slug (and 200 on /health), so HAProxy's split can be seen with curl.

    python -m routing.demo_backends .data/demo/backends.txt     # lines: "<slug> <port>"
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def handler_for(slug: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            body = f"{slug}\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args) -> None:
            pass

    return Handler


def main(path: str) -> None:
    servers = []
    for line in Path(path).read_text().splitlines():
        slug, port = line.split()
        server = ThreadingHTTPServer(("127.0.0.1", int(port)), handler_for(slug))
        server.daemon_threads = True
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"{slug} on http://127.0.0.1:{port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1])
