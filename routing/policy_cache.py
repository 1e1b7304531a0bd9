"""The shared cache behind `GET /api/v1/gateways/self/policy`, the endpoint every gateway polls.

An entry maps a token hash to what the endpoint answers for it: the gateway id, the current
document's strong ETag and the stored document bytes. A hit answers 200 or 304 with one Redis
round trip and no database query.

Correctness rests on one shared *generation*, not on deleting entries: every entry records the
generation it was read under, and a hit counts only if that is still the current one. Publishing a
document, rotating or revoking a token and deleting a gateway replace the generation after their
transaction commits. A reader that loaded the old state just before a commit may still store it,
but under the old generation, so it is never served: the race a plain "delete the key" has is
closed. The generation is a random string, so one lost with a Redis restart is never recreated
equal to an old one. Entries also expire after GATEWAY_POLICY_CACHE_SECONDS, a safety net (and it
bounds how stale `last_seen_at` can be: it is written on a miss).

Only a Redis cache is shared between web processes; with any other backend (the demo's memory
cache, the test settings) the cache is off and every request reads the database.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

GENERATION_KEY = "routing:policy:generation"


@dataclass(frozen=True)
class CachedPolicy:
    gateway_id: int
    etag: str
    body: bytes


_clients: dict[int, object] = {}


def _client():
    """The default cache's Redis client (same server, pool and key prefix), or None when the cache
    is not Redis and so not shared by the web processes."""
    cache = caches["default"]
    if not isinstance(cache, RedisCache) or settings.GATEWAY_POLICY_CACHE_SECONDS <= 0:
        return None, None
    # Values are our own bytes, not Django's pickles: the raw client is used for a pipeline (one
    # round trip for the lookup and the rate count) and keys still carry the cache's prefix.
    # Django builds a client object per call; one per connection pool is enough (thread-safe).
    pool = cache._cache._get_connection_pool(write=True)
    client = _clients.get(id(pool))
    if client is None:
        client = _clients[id(pool)] = cache._cache._client(connection_pool=pool)
    return client, cache


def _entry_key(cache, token_hash: str) -> str:
    return cache.make_key(f"routing:policy:token:{token_hash}")


def _rate_key(cache, token_hash: str, window: int) -> str:
    return cache.make_key(f"routing:policy:rate:{token_hash}:{window}")


def policy_cache_lookup(*, token_hash: str) -> tuple[CachedPolicy | None, bool]:
    """(the cached answer for this token or None, whether this request is within the rate).

    The rate is the gateway token rate (GATEWAY_TOKEN_RATE_PER_MINUTE) counted in fixed one-minute
    windows in the same round trip; it is only counted on a hit (a miss goes through the DRF view,
    whose throttle counts it)."""
    client, cache = _client()
    if client is None:
        return None, True
    window = int(time.time() // 60)
    rate_key = _rate_key(cache, token_hash, window)
    try:
        pipe = client.pipeline(transaction=False)
        pipe.mget([cache.make_key(GENERATION_KEY), _entry_key(cache, token_hash)])
        pipe.incr(rate_key)
        (generation, entry), count = pipe.execute()
        if count == 1:  # a new window: the key outlives it a little, then goes
            client.expire(rate_key, 120)
    except RedisError:
        logger.warning("Gateway policy cache unreachable; answering from the database", exc_info=True)
        return None, True
    if generation is None or entry is None:
        return None, True
    header, _, body = entry.partition(b"\n\n")
    entry_generation, gateway_id, etag = header.decode().split("\n")
    if entry_generation != generation.decode():
        return None, True
    return CachedPolicy(int(gateway_id), etag, body), count <= settings.GATEWAY_TOKEN_RATE_PER_MINUTE


def policy_cache_generation() -> str | None:
    """The current generation, created if missing; read *before* the database so that an entry
    filled from a state that a concurrent commit replaced is stored under the replaced generation."""
    client, cache = _client()
    if client is None:
        return None
    key = cache.make_key(GENERATION_KEY)
    try:
        client.set(key, secrets.token_hex(16), nx=True)
        value = client.get(key)
    except RedisError:
        logger.warning("Gateway policy cache unreachable; not caching", exc_info=True)
        return None
    return value.decode() if value is not None else None


def policy_cache_store(
    *, generation: str | None, token_hash: str, gateway_id: int, etag: str, body: bytes
) -> None:
    client, cache = _client()
    if client is None or generation is None:
        return
    entry = f"{generation}\n{gateway_id}\n{etag}\n\n".encode() + body
    try:
        client.set(_entry_key(cache, token_hash), entry, ex=settings.GATEWAY_POLICY_CACHE_SECONDS)
    except RedisError:
        logger.warning("Gateway policy cache unreachable; not caching", exc_info=True)


def policy_cache_invalidate() -> None:
    """Make every cached answer stale, once the current transaction commits (before it, a reader
    could refill the cache from the state being replaced). Errors are not swallowed: a revocation
    that could not reach the cache must not look done (entries then expire within the TTL)."""

    def replace_generation() -> None:
        client, cache = _client()
        if client is not None:
            client.set(cache.make_key(GENERATION_KEY), secrets.token_hex(16))

    transaction.on_commit(replace_generation)


# The gateway behind a token, for endpoints that only need to know who is calling (the lease
# endpoint): the same generation guards it, so a rotated or revoked token, or a deleted gateway,
# stops authenticating as soon as its transaction commits.


def _gateway_key(cache, token_hash: str) -> str:
    return cache.make_key(f"routing:policy:gateway:{token_hash}")


def gateway_token_cache_lookup(*, token_hash: str) -> tuple[int, str] | None:
    """(gateway id, slug) for this token hash if cached under the current generation; one round trip."""
    client, cache = _client()
    if client is None:
        return None
    try:
        generation, entry = client.mget([cache.make_key(GENERATION_KEY), _gateway_key(cache, token_hash)])
    except RedisError:
        logger.warning("Gateway token cache unreachable; authenticating from the database", exc_info=True)
        return None
    if generation is None or entry is None:
        return None
    entry_generation, gateway_id, slug = entry.decode().split("\n")
    if entry_generation != generation.decode():
        return None
    return int(gateway_id), slug


def gateway_token_cache_lookup_counting(
    *, token_hash: str, rate_key: str
) -> tuple[tuple[int, str] | None, int | None]:
    """gateway_token_cache_lookup, and one more request counted on the counter `rate_key` (a full
    key, see attribution.api.access.rate_window_key) in the same round trip: ((gateway id, slug) or
    None, the count after this request or None when Redis could not count it)."""
    client, cache = _client()
    if client is None:
        return None, None
    try:
        pipe = client.pipeline(transaction=False)
        pipe.mget([cache.make_key(GENERATION_KEY), _gateway_key(cache, token_hash)])
        pipe.incr(rate_key)
        pipe.expire(rate_key, 120)
        (generation, entry), count, _ = pipe.execute()
    except RedisError:
        logger.warning("Gateway token cache unreachable; authenticating from the database", exc_info=True)
        return None, None
    if generation is None or entry is None:
        return None, count
    entry_generation, gateway_id, slug = entry.decode().split("\n")
    if entry_generation != generation.decode():
        return None, count
    return (int(gateway_id), slug), count


def gateway_token_cache_store(*, generation: str | None, token_hash: str, gateway_id: int, slug: str) -> None:
    client, cache = _client()
    if client is None or generation is None:
        return
    try:
        client.set(
            _gateway_key(cache, token_hash),
            f"{generation}\n{gateway_id}\n{slug}".encode(),
            ex=settings.GATEWAY_POLICY_CACHE_SECONDS,
        )
    except RedisError:
        logger.warning("Gateway token cache unreachable; not caching", exc_info=True)
