"""HAProxy: push weights over the runtime API (stats socket, `level admin`).

HAProxy has no atomic multi-server update, so weights that rise are set before weights that fall:
lowering first would starve a server for hundreds of requests and, at worst, leave every server of
a backend at 0 (503s). Each weight is read back with `get weight`. With `state_file` set, the
servers' state is dumped after each push (`show servers state`) so a reload that loads it
(`server-state-file` + `load-server-state-from-file global`) keeps the pushed weights.

push_settings: {"runtime_api": "127.0.0.1:9999" | "/run/haproxy.sock",
                "backends": {"<model slug>": "<backend name>"} (default: the model slug)
                         or {"<model slug>": {"realtime": "<backend>", "batch": "<backend>"}},
                "request_class": "realtime" (the class of a backend given by name alone),
                "state_file": "/var/lib/haproxy/state"}

Request classes: HAProxy's config chooses the backend per class with a header ACL, e.g.
`acl batch req.hdr(x-inferensys-class) -m str batch` and `use_backend llama-70b-batch if batch`
before `default_backend llama-70b`; each backend lists the model's deployments as servers (server
name = deployment slug) and each gets its class's weights.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from routing.adapters import BATCH, REALTIME, PushError, route_weights

TIMEOUT_SECONDS = 3.0


def runtime_command(address: str, command: str) -> str:
    """One command on a fresh connection (HAProxy closes it after answering)."""
    try:
        if address.startswith("/"):
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.settimeout(TIMEOUT_SECONDS)
            connection.connect(address)
        else:
            host, _, port = address.rpartition(":")
            connection = socket.create_connection((host, int(port)), timeout=TIMEOUT_SECONDS)
        with connection:
            connection.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
    except OSError as error:
        raise PushError(f"HAProxy runtime API at {address} is unreachable: {error}") from error
    return b"".join(chunks).decode(errors="replace").strip()


def current_weight(address: str, backend: str, server: str) -> int:
    answer = runtime_command(address, f"get weight {backend}/{server}")
    try:
        return int(answer.split()[0])  # "70 (initial 50)"
    except (IndexError, ValueError):
        raise PushError(f"get weight {backend}/{server}: unexpected answer {answer!r}") from None


def plan(content: dict[str, Any], settings: dict[str, Any], origin: str) -> dict[str, dict[str, int]]:
    """{backend: {server: weight}} for every model and request class of the document that has a
    backend (see the module's push_settings)."""
    backends = settings.get("backends") or {}
    default_class = settings.get("request_class", REALTIME)
    wanted = {}
    for model in content["models"]:
        by_class = backends.get(model, model)
        if isinstance(by_class, str):
            by_class = {default_class: by_class}
        for request_class, backend in by_class.items():
            weights = route_weights(content, model=model, request_class=request_class, origin=origin)
            if weights:
                wanted[backend] = weights
    return wanted


def plan_errors(settings: dict[str, Any]) -> list[str]:
    """What is wrong with push_settings.backends, in words (empty when it is usable)."""
    errors = []
    for model, by_class in (settings.get("backends") or {}).items():
        if isinstance(by_class, str):
            continue
        if not isinstance(by_class, dict) or not by_class:
            errors.append(f"backends.{model}: a backend name or {{request class: backend name}}")
            continue
        for request_class, backend in by_class.items():
            if request_class not in (REALTIME, BATCH):
                errors.append(f"backends.{model}: unknown request class {request_class!r} (realtime, batch)")
            if not isinstance(backend, str) or not backend:
                errors.append(f"backends.{model}.{request_class}: a backend name")
    return errors


def push(*, content: dict[str, Any], settings: dict[str, Any], origin: str) -> str:
    address = settings.get("runtime_api")
    if not address:
        raise PushError("push_settings.runtime_api is not set (host:port or a socket path).")
    errors = plan_errors(settings)
    if errors:
        raise PushError("push_settings: " + "; ".join(errors))
    wanted = plan(content, settings, origin)
    changes = []
    for backend, weights in sorted(wanted.items()):
        if sum(weights.values()) <= 0:
            raise PushError(f"refusing to set every server of {backend} to weight 0")
        current = {server: current_weight(address, backend, server) for server in weights}
        raises = [(s, w) for s, w in sorted(weights.items()) if w > current[s]]
        lowers = [(s, w) for s, w in sorted(weights.items()) if w < current[s]]
        for server, weight in raises + lowers:
            answer = runtime_command(address, f"set server {backend}/{server} weight {weight}")
            if answer:  # success is an empty answer
                raise PushError(f"set server {backend}/{server} weight {weight}: {answer}")
            changes.append(f"{backend}/{server} {current[server]}->{weight}")
        for server, weight in weights.items():
            applied = current_weight(address, backend, server)
            if applied != weight:
                raise PushError(f"{backend}/{server} reports weight {applied}, expected {weight}")
    state_file = settings.get("state_file")
    if state_file:
        state = runtime_command(address, "show servers state")
        path = Path(state_file)
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(state + "\n")
        os.replace(temporary, path)  # a reload never reads a half-written file
    return "; ".join(changes) or "weights already applied"
