"""Signed webhook: POST the document to any HTTP gateway (LiteLLM-style routers).

Headers: `X-Inferensys-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`,
`X-Inferensys-Policy-Version`, `Content-Type: application/json`. The receiver recomputes the HMAC
over the raw body and refuses a timestamp older than a few minutes (replay). The secret is a
reference in push_settings (`"secret": "env:NAME"` or `"file:/path"`), never stored in the database.

push_settings: {"url": "https://router.example/policy", "secret": "env:ROUTER_WEBHOOK_SECRET"}
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.request

from attribution.connectors.credentials import CredentialsError, reference_resolve
from routing.adapters import PushError

TIMEOUT_SECONDS = 5.0


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def push(*, body: bytes, version: int, settings: dict) -> tuple[int, str]:
    url = settings.get("url")
    if not url:
        raise PushError("push_settings.url is not set.")
    try:
        secret = reference_resolve(settings.get("secret", ""))
    except CredentialsError as error:
        raise PushError(f"webhook secret: {error}") from None
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Inferensys-Policy-Version": str(version),
            "X-Inferensys-Signature": signature(secret=secret, timestamp=int(time.time()), body=body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status, f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        raise PushError(f"{url} answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        raise PushError(f"{url}: {getattr(error, 'reason', error)}") from None
