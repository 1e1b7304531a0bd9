"""A loopback HTTP(S) server in a thread, the base of the cloud API stand-ins.

Each stand-in subclasses `StandinHandler`, answers in the provider's documented wire format and
records every request it saw (`server.requests`), so tests assert what the real client sent.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class SeenRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Standin:
    """A running stand-in: its base URL, what it saw, and the state the handler reads."""

    server: ThreadingHTTPServer
    thread: threading.Thread
    scheme: str
    requests: list[SeenRequest] = field(default_factory=list)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class StandinHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    standin: Standin  # set on the subclass built by `standin_start`

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base
        pass  # quiet: the tests assert on `standin.requests`

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    def _record(self) -> SeenRequest:
        parts = urlsplit(self.path)
        seen = SeenRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={key.lower(): value for key, value in self.headers.items()},
            body=self._read_body(),
        )
        self.standin.requests.append(seen)
        return seen

    def send_json(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def handle_request(self, request: SeenRequest) -> None:
        raise NotImplementedError

    def do_GET(self) -> None:
        self.handle_request(self._record())

    def do_POST(self) -> None:
        self.handle_request(self._record())


def standin_start(handler: type[StandinHandler], *, ssl_context: ssl.SSLContext | None = None) -> Standin:
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)  # type: ignore[arg-type]
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    standin = Standin(server=server, thread=None, scheme="https" if ssl_context else "http")  # type: ignore[arg-type]
    bound = type(handler.__name__, (handler,), {"standin": standin})
    server.RequestHandlerClass = bound
    server.daemon_threads = True
    standin.thread = threading.Thread(target=server.serve_forever, name=handler.__name__, daemon=True)
    standin.thread.start()
    return standin


@dataclass(frozen=True)
class LocalCA:
    """A self-signed CA and a server certificate for 127.0.0.1, made with the openssl CLI."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_pem, self.key_pem)
        return context


def local_ca_make(directory: Path) -> LocalCA:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=Inferensys test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1",
    )  # fmt: skip
    (directory / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
    )  # fmt: skip
    return LocalCA(
        ca_pem=directory / "ca.pem", cert_pem=directory / "server.pem", key_pem=directory / "server.key"
    )
