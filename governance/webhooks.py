"""Signing of generic webhooks: HMAC-SHA256 over `<timestamp>.<body>`.

Headers sent with each delivery:
    X-Inferensys-Timestamp: 1764680400            (Unix seconds)
    X-Inferensys-Signature: v1=<hex HMAC-SHA256 of b"1764680400." + body, keyed by the secret>

A receiver recomputes the HMAC over the raw body, compares in constant time, and refuses a timestamp
outside its replay window (5 minutes by default). `webhook_signature_verify` is the reference
implementation (the README shows it as a standalone snippet).
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Inferensys-Timestamp"
SIGNATURE_HEADER = "X-Inferensys-Signature"
REPLAY_WINDOW_SECONDS = 300


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def webhook_signature_verify(
    *,
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float | None = None,
    window_seconds: int = REPLAY_WINDOW_SECONDS,
) -> bool:
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent_at) > window_seconds:
        return False
    expected = webhook_signature(secret=secret, timestamp=sent_at, body=body)
    return hmac.compare_digest(expected, signature or "")
