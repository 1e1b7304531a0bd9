"""Token generation and hashing shared by API tokens and gateway tokens.

A token looks like `ifs_<prefix>_<secret>`. The prefix is stored in clear so a leaked token can be
identified in logs; only an HMAC-SHA256 of the whole token (keyed by TOKEN_HASH_KEY) is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.conf import settings

TOKEN_MARKER = "ifs"


@dataclass(frozen=True)
class NewToken:
    plaintext: str
    prefix: str
    token_hash: str


def hash_token(plaintext: str) -> str:
    key = settings.TOKEN_HASH_KEY.encode()
    return hmac.new(key, plaintext.encode(), hashlib.sha256).hexdigest()


def generate_token() -> NewToken:
    prefix = secrets.token_hex(4)
    plaintext = f"{TOKEN_MARKER}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewToken(plaintext=plaintext, prefix=prefix, token_hash=hash_token(plaintext))


def split_prefix(plaintext: str) -> str | None:
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_MARKER:
        return None
    return parts[1]
