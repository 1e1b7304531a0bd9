"""Who may call what, as DRF permission and throttle classes shared by every endpoint.

Settings name these classes (DEFAULT_PERMISSION_CLASSES, DEFAULT_THROTTLE_CLASSES) and DRF loads
them while its own views module is still being imported, so this module imports no DRF views,
viewsets or generics.
"""

from __future__ import annotations

import math
import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework import permissions, throttling
from rest_framework.request import Request

# API token scopes. Session users are not scoped: their roles decide.
READ_SCOPE = "read"
WRITE_SCOPE = "write"


def token_scope_denial(*, scopes: list[str] | None, method: str, view: Any) -> str | None:
    """Why a token with `scopes` may not call `method` on `view`, or None if it may.

    Safe methods need `read`. Every other method needs `write`, or the narrower scope the view
    names in `token_write_scope` (e.g. `write:exchange_rates`). A view that names none accepts only
    `write`: an endpoint added without thinking about scopes is closed to narrow tokens, not open.
    """
    if scopes is None:  # a session, or a scheme without scopes (gateway tokens)
        return None
    if method in permissions.SAFE_METHODS:
        return None if READ_SCOPE in scopes else f"This API token lacks the '{READ_SCOPE}' scope."
    narrow = getattr(view, "token_write_scope", None)
    if narrow is None and getattr(view, "write_scope", None):  # the budgets API's spelling
        narrow = f"write:{view.write_scope}"
    accepted = [WRITE_SCOPE, *([narrow] if narrow else [])]
    if any(scope in scopes for scope in accepted):
        return None
    return f"This API token lacks the {' or '.join(repr(scope) for scope in accepted)} scope for {method}."


class TokenScopePermission(permissions.BasePermission):
    """The one scope check for API tokens, on every method of every endpoint.

    It is the first of DEFAULT_PERMISSION_CLASSES and of the base viewset. A view that replaces
    permission_classes without it is still covered: ApiTokenAuthentication applies the same rule
    (token_scope_denial) when it authenticates a token, so no endpoint can drop the check.
    """

    message = "This API token lacks the scope this request needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        denial = token_scope_denial(
            scopes=getattr(request.auth, "scopes", None), method=request.method, view=view
        )
        if denial is not None:
            self.message = denial
        return denial is None


RATE_WINDOW_SECONDS = 60
_redis_clients: dict[int, Any] = {}


def _redis_client(cache: Any) -> Any:
    """The raw client of a Django RedisCache (same server, pool and key prefix), built once per
    connection pool (Django builds one per call; the client is thread-safe)."""
    pool = cache._cache._get_connection_pool(write=True)
    client = _redis_clients.get(id(pool))
    if client is None:
        client = _redis_clients[id(pool)] = cache._cache._client(connection_pool=pool)
    return client


def rate_window(now: float | None = None) -> tuple[int, int]:
    """(the current one-minute window's number, seconds until it ends, for Retry-After)."""
    now = time.time() if now is None else now
    window = int(now // RATE_WINDOW_SECONDS)
    return window, max(1, math.ceil((window + 1) * RATE_WINDOW_SECONDS - now))


# A window's counter outlives it a little, then goes.
RATE_KEY_TTL_SECONDS = 2 * RATE_WINDOW_SECONDS


def rate_window_key(*, key: str, window: int) -> str:
    """The cache key (with the cache's prefix) of `key`'s counter in `window`: for code that
    counts it in a round trip of its own (routing.auth counts a gateway's in its token lookup)."""
    return caches["default"].make_key(f"{key}:{window}")


def token_rate_hit(*, key: str, per_minute: int, now: float | None = None) -> tuple[bool, int]:
    """Count one request against `key` in the current one-minute window: (within the rate,
    seconds until the window ends, for Retry-After).

    A fixed-window counter incremented atomically: with Redis one MULTI/INCR/EXPIRE round trip,
    otherwise the cache's own `incr` (the tests' memory cache, atomic; the demo's file cache, where
    two requests of one token at the same moment may count once: one web process, no limit). DRF's
    SimpleRateThrottle instead reads the list of request times, appends and writes it back: two
    round trips, a list that grows with the rate, and concurrent requests of one token overwrite
    each other's appends, so a burst from many replicas was under-counted. A fixed window lets a
    token make up to twice its rate across a window boundary; that is the price of one counter."""
    window, retry_after = rate_window(now)
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        full_key = rate_window_key(key=key, window=window)
        pipe = _redis_client(cache).pipeline(transaction=True)
        pipe.incr(full_key)
        pipe.expire(full_key, RATE_KEY_TTL_SECONDS)
        count, _ = pipe.execute()
    else:
        full_key = f"{key}:{window}"
        cache.add(full_key, 0, RATE_KEY_TTL_SECONDS)
        try:
            count = cache.incr(full_key)
        except ValueError:  # expired between add and incr: this request starts the count
            cache.set(full_key, 1, RATE_KEY_TTL_SECONDS)
            count = 1
    return count <= per_minute, retry_after


def gateway_rate_key(token_hash: str) -> str:
    """A gateway's counter is its token's (by hash, so authentication can count it in the round
    trip that looks the token up, before it knows the gateway)."""
    return f"throttle:gateway-token:{token_hash}"


def token_rate_key(token: Any) -> str:
    """The counter of an API token, or of a gateway's token: one per token, shared by every web
    process and by every endpoint that token calls."""
    if token.__class__.__name__ == "Gateway":
        return gateway_rate_key(token.token_hash)
    return f"throttle:{token._meta.label_lower}:{token.pk}"


def token_rate_per_minute(token: Any) -> int:
    if token.__class__.__name__ == "Gateway":
        return settings.GATEWAY_TOKEN_RATE_PER_MINUTE
    return settings.API_TOKEN_RATE_PER_MINUTE


# An authentication class that already counted this request in its own round trip sets this
# attribute on the token object to the count it got (routing.auth.CachedGatewayTokenAuthentication).
RATE_COUNTED_ATTRIBUTE = "rate_counted"


def token_rate_check(token: Any) -> tuple[bool, int]:
    """(within the rate, Retry-After seconds) for one request of `token`, counted exactly once."""
    per_minute = token_rate_per_minute(token)
    counted = getattr(token, RATE_COUNTED_ATTRIBUTE, None)
    if counted is not None:
        return counted <= per_minute, rate_window()[1]
    return token_rate_hit(key=token_rate_key(token), per_minute=per_minute)


class TokenRateThrottle(throttling.BaseThrottle):
    """Requests per minute per API token and per gateway token; sessions are not throttled here
    (logins are, by django-axes). Over the rate: 429 with Retry-After (DRF).

    The token row is the key, so a token's budget is the same whichever web process answers (the
    count lives in the shared cache; see token_rate_hit)."""

    retry_after: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        token = request.auth
        if token is None or getattr(token, "pk", None) is None:
            return True
        allowed, self.retry_after = token_rate_check(token)
        return allowed

    def wait(self) -> int | None:
        return self.retry_after
