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

**Per-process layer.** A round trip to Redis, small as it is, costs a web process more than the
rest of a 304 (on a busy machine it is two context switches). So each process also keeps the
entries it answered from (token hash -> the same CachedPolicy) and is told of every change: the
generation is replaced together with a PUBLISH on GENERATION_CHANNEL (one MULTI), and the process
holds a subscriber connection that it reads, without waiting, *before* every answer from its own
copy. A message (any) empties the copy; a lost subscriber connection empties it and the process
goes back to one round trip per request until it has subscribed again. The copy's entries expire
with the shared ones. So a rotation or revocation that has committed (and published) is seen by
the next request in every process, as with the shared cache alone. The token rate is then counted
in batches: each process adds its count to the shared per-minute key (INCRBY) at the first request
of a window, every FLUSH_REQUESTS requests or FLUSH_SECONDS, and at every request once the count
is within a tenth of the limit, so the limit is exact where it matters.
Off with GATEWAY_POLICY_LOCAL_CACHE=False.

Only a Redis cache is shared between web processes; with any other backend (the demo's memory
cache, the test settings) the cache is off and every request reads the database.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

GENERATION_KEY = "routing:policy:generation"
GENERATION_CHANNEL = "routing:policy:generation-changed"
# A process adds its count to the shared one at least this often (a round trip per flush: at a few
# hundred polls a second per process, flushing every 64 cost a tenth of a 304's time on a busy machine).
FLUSH_REQUESTS = 1000
FLUSH_SECONDS = 1.0
RESUBSCRIBE_SECONDS = 5.0


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


def _channel(pool, cache) -> str:
    # Channels are per server, not per database: name the database, so that two installations on
    # one Redis server do not empty each other's copies.
    return f"{cache.make_key(GENERATION_CHANNEL)}:{pool.connection_kwargs.get('db', 0)}"


def _entry_key(cache, token_hash: str) -> str:
    return cache.make_key(f"routing:policy:token:{token_hash}")


def _rate_key(cache, token_hash: str, window: int) -> str:
    return cache.make_key(f"routing:policy:rate:{token_hash}:{window}")


def policy_cache_lookup(*, token_hash: str) -> tuple[CachedPolicy | None, bool]:
    """(the cached answer for this token or None, whether this request is within the rate).

    The rate is the gateway token rate (GATEWAY_TOKEN_RATE_PER_MINUTE) counted in fixed one-minute
    windows, in the same round trip (or in batches, from the process's own copy); it is only
    counted on a hit (a miss goes through the DRF view, whose throttle counts it)."""
    client, cache = _client()
    if client is None:
        return None, True
    local = _local_layer(client, cache)
    if local is not None:
        with local.lock:
            answer = local.lookup(client, cache, token_hash)
        if answer is not None:
            return answer
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
    cached = CachedPolicy(int(gateway_id), etag, body)
    if local is not None:
        with local.lock:
            local.remember(token_hash, cached, window=window, count=count)
    return cached, count <= settings.GATEWAY_TOKEN_RATE_PER_MINUTE


@dataclass
class _RateCount:
    window: int
    known: int  # the shared count after this process's last INCRBY
    pending: int = 0  # counted here, not yet added to the shared count
    flushed_at: float = field(default_factory=time.monotonic)


class _LocalLayer:
    """One process's copy of the entries it answered from, valid while its subscriber connection
    says that no generation has been replaced since (see the module docstring)."""

    def __init__(self, pool) -> None:
        self.pool = pool
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.subscriber = None
        self.retry_at = 0.0
        self.entries: dict[str, tuple[float, CachedPolicy]] = {}
        self.counts: dict[str, _RateCount] = {}

    def forget(self) -> None:
        self.entries.clear()

    def _subscriber_drop(self) -> None:
        if self.subscriber is not None:
            self.subscriber.disconnect()
        self.subscriber = None
        self.retry_at = time.monotonic() + RESUBSCRIBE_SECONDS
        self.forget()

    def current(self, cache) -> bool:
        """Read every pending message (any one empties the copy); False when there is no working
        subscriber connection, so the copy cannot be trusted."""
        if self.subscriber is None:
            if time.monotonic() < self.retry_at:
                return False
            try:
                # RESP2: a subscriber's messages are then plain replies (RESP3 hands them to a
                # push handler, and read_response would wait for a reply that never comes).
                connection = self.pool.connection_class(**{**self.pool.connection_kwargs, "protocol": 2})
                connection.connect()
                connection.send_command("SUBSCRIBE", _channel(self.pool, cache))
                connection.read_response()  # the subscription's confirmation
            except RedisError:
                logger.warning(
                    "Gateway policy cache: cannot subscribe; one round trip per poll", exc_info=True
                )
                self.retry_at = time.monotonic() + RESUBSCRIBE_SECONDS
                return False
            self.subscriber = connection
            self.forget()  # anything kept before the subscription may be stale
            return True
        try:
            while self.subscriber.can_read(timeout=0):
                self.subscriber.read_response()
                self.forget()
        except RedisError:
            logger.warning("Gateway policy cache: subscriber connection lost", exc_info=True)
            self._subscriber_drop()
            return False
        return True

    def lookup(self, client, cache, token_hash: str) -> tuple[CachedPolicy, bool] | None:
        if not self.current(cache):
            return None
        found = self.entries.get(token_hash)
        if found is None:
            return None
        expires, cached = found
        if time.monotonic() >= expires:
            del self.entries[token_hash]
            return None
        within = self._count(client, cache, token_hash)
        return None if within is None else (cached, within)

    def remember(self, token_hash: str, cached: CachedPolicy, *, window: int, count: int) -> None:
        # Only with a subscriber in place: then any later change reaches the copy (read before use).
        if self.subscriber is None:
            return
        self.entries[token_hash] = (time.monotonic() + settings.GATEWAY_POLICY_CACHE_SECONDS, cached)
        self.counts[token_hash] = _RateCount(window=window, known=count)

    def _count(self, client, cache, token_hash: str) -> bool | None:
        """Count this request; whether it is within the rate (None: Redis unreachable)."""
        limit = settings.GATEWAY_TOKEN_RATE_PER_MINUTE
        window = int(time.time() // 60)
        count = self.counts.get(token_hash)
        if count is None or count.window != window:
            # A new window: count at once, so `known` starts from the shared figure.
            count = self.counts[token_hash] = _RateCount(window=window, known=0)
            count.pending, must_flush = 1, True
        else:
            count.pending += 1
            must_flush = (
                count.known + count.pending > limit - max(limit // 10, FLUSH_REQUESTS)
                or count.pending >= FLUSH_REQUESTS
                or time.monotonic() - count.flushed_at >= FLUSH_SECONDS
            )
        if must_flush:
            rate_key = _rate_key(cache, token_hash, window)
            try:
                pipe = client.pipeline(transaction=False)
                pipe.incrby(rate_key, count.pending)
                pipe.expire(rate_key, 120)
                count.known, _ = pipe.execute()
            except RedisError:
                logger.warning("Gateway policy cache unreachable; answering from the database", exc_info=True)
                del self.counts[token_hash]
                self._subscriber_drop()
                return None
            count.pending, count.flushed_at = 0, time.monotonic()
        return count.known + count.pending <= limit


_layers: dict[int, _LocalLayer] = {}
_layers_lock = threading.Lock()


def _local_layer(client, cache) -> _LocalLayer | None:
    if not settings.GATEWAY_POLICY_LOCAL_CACHE:
        return None
    pool = client.connection_pool
    layer = _layers.get(id(pool))
    if layer is None or layer.pid != os.getpid() or layer.pool is not pool:
        # A forked child must not read its parent's subscriber socket: it makes its own.
        with _layers_lock:
            layer = _layers[id(pool)] = _LocalLayer(pool)
    return layer


def policy_cache_generation() -> str | None:
    """The current generation, created if missing; read *before* the database so that an entry
    filled from a state that a concurrent commit replaced is stored under the replaced generation."""
    client, cache = _client()
    if client is None:
        return None
    key = cache.make_key(GENERATION_KEY)
    try:
        if client.set(key, secrets.token_hex(16), nx=True):
            # A new generation (the key was missing): copies kept by processes are of another.
            client.publish(_channel(client.connection_pool, cache), b"created")
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
            # One MULTI: a process's copy is emptied by the message, so the new generation must
            # never be set without it.
            pipe = client.pipeline(transaction=True)
            pipe.set(cache.make_key(GENERATION_KEY), secrets.token_hex(16))
            pipe.publish(_channel(client.connection_pool, cache), b"replaced")
            pipe.execute()

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
