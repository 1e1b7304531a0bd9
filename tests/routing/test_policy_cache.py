"""The policy endpoint's shared Redis cache: hits need no database, and publishing, token rotation,
revocation and gateway deletion take effect at once, also when another process makes them.

The lease endpoint authenticates gateways from the same cache (routing.auth.
CachedGatewayTokenAuthentication) under the same generation, so the same guarantees are checked
for it at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from governance.models import BudgetThreshold, Lease
from governance.tokens import hash_token
from routing import policy_cache, services
from routing.models import Gateway, PolicyDocument
from tests.celery_worker import ROOT, database_url_for_the_test_database
from tests.factories import BudgetFactory
from tests.routing.conftest import routed_deployment

POLICY = "/api/v1/gateways/self/policy"
LEASES = "/api/v1/leases"
pytestmark = pytest.mark.django_db(transaction=True)


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def redis_url() -> str:
    url = str(settings.CELERY_BROKER_URL)
    if not url.startswith("redis://"):
        pytest.fail(f"These tests need Redis (TEST_REDIS_URL), not {url!r}.")
    return url


def _policy_keys_delete(url: str) -> None:
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=":1:routing:policy:*"):
        client.delete(key)


@pytest.fixture
def shared_cache(redis_url):
    _policy_keys_delete(redis_url)
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}
    with override_settings(CACHES=caches, GATEWAY_POLICY_CACHE_SECONDS=30):
        yield redis_url
    _policy_keys_delete(redis_url)


@pytest.fixture
def published(llama, pull_gateway, shared_cache):
    routed_deployment(llama, "llama-aws", cost_per_1m="1.00")
    routed_deployment(llama, "llama-gcp", cost_per_1m="2.00", provider="gcp")
    services.policies_republish(reason="cost")
    return pull_gateway


def other_process(code: str, redis_url: str) -> str:
    """Run code in another Python process on the same database and Redis (like another web or
    worker process): nothing in this process's memory is shared with it."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": database_url_for_the_test_database(),
        "INFERENSYS_CACHE_URL": redis_url,
        "INFERENSYS_DATA_DIR": str(settings.DATA_DIR),
    }
    script = f"import django; django.setup()\n{code}"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_cached_answer_needs_no_database_and_is_the_same(published, django_assert_num_queries):
    gateway, token = published
    client = Client()
    first = client.get(POLICY, **bearer(token))  # a miss: fills the cache
    assert first.status_code == 200
    with django_assert_num_queries(0):
        again = client.get(POLICY, **bearer(token))
        not_modified = client.get(POLICY, HTTP_IF_NONE_MATCH=first["ETag"], **bearer(token))
    document = PolicyDocument.objects.get(gateway=gateway)
    assert again.status_code == 200 and again.content == first.content
    assert again["ETag"] == first["ETag"] == f'"{document.version}-{document.content_hash}"'
    assert again["Content-Type"] == first["Content-Type"] == "application/json"
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified["ETag"] == first["ETag"]


def test_a_conditional_poll_fills_the_cache_too(published, django_assert_num_queries):
    gateway, token = published
    document = PolicyDocument.objects.get(gateway=gateway)
    etag = f'"{document.version}-{document.content_hash}"'
    client = Client()
    assert client.get(POLICY, HTTP_IF_NONE_MATCH=etag, **bearer(token)).status_code == 304
    with django_assert_num_queries(0):
        assert client.get(POLICY, HTTP_IF_NONE_MATCH=etag, **bearer(token)).status_code == 304
        full = client.get(POLICY, **bearer(token))
    assert json.loads(full.content)["content_hash"] == document.content_hash


def test_a_token_revoked_in_another_process_stops_working_at_once(published, shared_cache):
    gateway, token = published
    client = Client()
    assert client.get(POLICY, **bearer(token)).status_code == 200
    assert client.get(POLICY, **bearer(token)).status_code == 200  # served from the cache
    other_process(
        "from django.core.management import call_command\n"
        f"call_command('gateway_token', {gateway.slug!r}, revoke=True)",
        shared_cache,
    )
    assert client.get(POLICY, **bearer(token)).status_code == 401


def test_a_token_rotated_in_another_process_stops_working_at_once(published, shared_cache):
    gateway, token = published
    client = Client()
    assert client.get(POLICY, **bearer(token)).status_code == 200
    assert client.get(POLICY, **bearer(token)).status_code == 200
    new_token = other_process(
        "from routing.models import Gateway\nfrom routing.services import gateway_token_rotate\n"
        f"print(gateway_token_rotate(gateway=Gateway.objects.get(slug={gateway.slug!r}), actor=None))",
        shared_cache,
    )
    assert client.get(POLICY, **bearer(token)).status_code == 401
    assert client.get(POLICY, **bearer(new_token)).status_code == 200


def test_a_document_published_in_another_process_is_served_at_once(published, llama, shared_cache):
    gateway, token = published
    client = Client()
    first = client.get(POLICY, **bearer(token))
    assert client.get(POLICY, HTTP_IF_NONE_MATCH=first["ETag"], **bearer(token)).status_code == 304
    routed_deployment(llama, "llama-azure", cost_per_1m="0.50", provider="azure")
    other_process("from routing import services\nservices.policies_republish(reason='cost')", shared_cache)
    latest = PolicyDocument.objects.filter(gateway=gateway).latest("version")
    assert latest.version == 2
    changed = client.get(POLICY, HTTP_IF_NONE_MATCH=first["ETag"], **bearer(token))
    assert changed.status_code == 200
    assert changed["ETag"] == f'"2-{latest.content_hash}"'
    assert json.loads(changed.content)["version"] == 2
    assert "llama-azure" in json.loads(changed.content)["policy"]["models"]["llama-70b"]["deployments"]


def test_a_deleted_gateway_is_not_answered_from_the_cache(published):
    gateway, token = published
    client = Client()
    assert client.get(POLICY, **bearer(token)).status_code == 200
    Gateway.objects.filter(pk=gateway.pk).delete()  # as the admin's bulk delete does
    assert client.get(POLICY, **bearer(token)).status_code == 401


def test_an_entry_read_before_a_revocation_is_never_served(published):
    """The race a plain "delete the key" loses: a reader loads the gateway, the revocation commits
    and clears the cache, then the reader stores what it loaded. Stored under the generation it read
    first, the entry is dead on arrival."""
    gateway, token = published
    generation = policy_cache.policy_cache_generation()  # the reader starts...
    services.gateway_token_revoke(gateway=gateway, actor=None)  # ...the revocation commits...
    policy_cache.policy_cache_store(  # ...and the reader stores what it loaded before it
        generation=generation,
        token_hash=hash_token(token),
        gateway_id=gateway.id,
        etag='"1-stale"',
        body=b"{}",
    )
    assert Client().get(POLICY, **bearer(token)).status_code == 401


def test_cached_answers_still_count_against_the_gateway_rate(published):
    gateway, token = published
    client = Client()
    with override_settings(GATEWAY_TOKEN_RATE_PER_MINUTE=3):
        for _attempt in range(2):  # a minute boundary may fall inside the loop: then once more
            _policy_keys_delete(str(settings.CELERY_BROKER_URL))
            statuses = [client.get(POLICY, **bearer(token)).status_code for _ in range(5)]
            if statuses[-1] == 429:
                break
        refused = client.get(POLICY, **bearer(token))
    # The miss is counted by the DRF throttle, the hits by the cache's own count.
    assert statuses[:3] == [200, 200, 200] and statuses[-1] == 429, statuses
    assert refused.status_code == 429 and int(refused["Retry-After"]) <= 60
    assert b"throttled" in refused.content


# --- Each process's own copy (GATEWAY_POLICY_LOCAL_CACHE) ------------------------------------------


class RedisCommands:
    """Counts the commands this process sends to Redis (every connection class sends through
    send_packed_command), so a test can say "no round trip"."""

    def __init__(self, monkeypatch) -> None:
        self.count = 0
        original = redis.connection.AbstractConnection.send_packed_command

        def counting(connection, command, check_health=True):
            self.count += 1
            return original(connection, command, check_health)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)


def warm(client: Client, token: str) -> str:
    """A miss (fills the shared cache), a shared hit (fills this process's copy); the ETag."""
    first = client.get(POLICY, **bearer(token))
    assert first.status_code == 200
    assert client.get(POLICY, **bearer(token)).status_code == 200
    return first["ETag"]


def test_a_warm_poll_makes_no_round_trip_and_no_query(published, monkeypatch, django_assert_num_queries):
    gateway, token = published
    client = Client()
    etag = warm(client, token)
    commands = RedisCommands(monkeypatch)
    with django_assert_num_queries(0):
        answers = [client.get(POLICY, HTTP_IF_NONE_MATCH=etag, **bearer(token)) for _ in range(20)]
        full = client.get(POLICY, **bearer(token))
    assert [answer.status_code for answer in answers] == [304] * 20
    assert all(answer["ETag"] == etag for answer in answers)
    assert full.status_code == 200 and json.loads(full.content)["version"] == 1
    # At most one flush of the rate count (a new minute may begin during the test).
    assert commands.count <= 1, commands.count


def test_a_warm_poll_opens_no_database_connection(published):
    gateway, token = published
    client = Client()
    etag = warm(client, token)
    connection.close()
    for _ in range(5):
        assert client.get(POLICY, HTTP_IF_NONE_MATCH=etag, **bearer(token)).status_code == 304
    assert connection.connection is None


def test_the_rate_counted_in_this_process_reaches_the_shared_count(published, monkeypatch):
    gateway, token = published
    client = Client()
    etag = warm(client, token)
    for _ in range(30):
        assert client.get(POLICY, HTTP_IF_NONE_MATCH=etag, **bearer(token)).status_code == 304
    monkeypatch.setattr(policy_cache, "FLUSH_SECONDS", 0.0)  # the next request flushes
    window = int(time.time() // 60)
    assert client.get(POLICY, HTTP_IF_NONE_MATCH=etag, **bearer(token)).status_code == 304
    shared = redis.Redis.from_url(str(settings.CELERY_BROKER_URL))
    counted = shared.get(f":1:routing:policy:rate:{hash_token(token)}:{window}")
    if int(time.time() // 60) == window:  # else the minute turned: the count started again
        # The miss and the shared hit that warmed the copy (each counted in its round trip), then 31
        # counted in the copy and flushed.
        assert int(counted) == 2 + 31


def test_a_token_revoked_in_another_process_is_not_served_from_a_warm_copy(published, shared_cache):
    gateway, token = published
    client = Client()
    etag = warm(client, token)
    assert client.get(POLICY, HTTP_IF_NONE_MATCH=etag, **bearer(token)).status_code == 304
    other_process(
        "from django.core.management import call_command\n"
        f"call_command('gateway_token', {gateway.slug!r}, revoke=True)",
        shared_cache,
    )
    assert client.get(POLICY, HTTP_IF_NONE_MATCH=etag, **bearer(token)).status_code == 401


def test_a_lost_subscription_empties_the_copy(published, shared_cache):
    """While the subscriber connection is down a change may be missed: the copy is not used again
    until the process has subscribed anew. Here the connection is killed and a revocation's message
    is lost with it (the generation replaced without one): the next poll is still refused."""
    gateway, token = published
    client = Client()
    etag = warm(client, token)
    shared = redis.Redis.from_url(shared_cache)
    layer = policy_cache._layers[id(policy_cache._client()[0].connection_pool)]
    port = layer.subscriber._sock.getsockname()[1]
    (subscriber,) = [c for c in shared.client_list() if c["addr"] == f"127.0.0.1:{port}"]
    shared.client_kill_filter(_id=subscriber["id"])
    Gateway.objects.filter(pk=gateway.pk).update(token_hash=None, token_prefix=None)  # no signal, no message
    shared.set(f":1:{policy_cache.GENERATION_KEY}", "replaced-without-a-message")
    assert client.get(POLICY, HTTP_IF_NONE_MATCH=etag, **bearer(token)).status_code == 401


@override_settings(GATEWAY_POLICY_LOCAL_CACHE=False)
def test_without_the_copy_every_poll_makes_one_round_trip(published, monkeypatch):
    gateway, token = published
    client = Client()
    etag = warm(client, token)
    commands = RedisCommands(monkeypatch)
    for _ in range(5):
        assert client.get(POLICY, HTTP_IF_NONE_MATCH=etag, **bearer(token)).status_code == 304
    assert commands.count == 5


# --- The lease endpoint's gateway authentication ----------------------------------------------------


@pytest.fixture
def lease_budget():
    budget = BudgetFactory(amount=Decimal("100.00"), period="month")
    BudgetThreshold.objects.create(budget=budget, percent=Decimal("100"), action="block")
    return budget


def lease(client: Client, token: str, budget) -> object:
    return client.post(
        LEASES, {"budget": budget.pk, "amount": "1.50"}, content_type="application/json", **bearer(token)
    )


def test_a_cached_gateway_token_grants_a_lease_without_the_token_query(
    pull_gateway, shared_cache, lease_budget
):
    gateway, token = pull_gateway
    client = Client()
    first = lease(client, token, lease_budget)  # a miss: the token query, then the cache is filled
    assert first.status_code == 200, first.content
    with CaptureQueriesContext(connection) as queries:
        again = lease(client, token, lease_budget)
    assert again.status_code == 200, again.content
    assert not [query for query in queries if "routing_gateway" in query["sql"]], queries.captured_queries
    body = again.json()
    # Who holds the lease is still the gateway the token belongs to, and the grant is what remains.
    assert Lease.objects.get(pk=body["lease"]).holder == f"gateway:{gateway.slug}"
    assert (body["granted"], body["remaining"]) == ("1.5000000000", "97.0000000000")


def test_a_lease_request_is_one_query_and_counted_once_in_the_token_lookups_round_trip(
    pull_gateway, shared_cache, lease_budget
):
    gateway, token = pull_gateway
    client = Client()
    counter = redis.Redis.from_url(shared_cache)

    def counted() -> int:
        return sum(int(counter.get(key)) for key in counter.scan_iter(match=":1:throttle:gateway-token:*"))

    for key in counter.scan_iter(match=":1:throttle:gateway-token:*"):
        counter.delete(key)
    with override_settings(GATEWAY_TOKEN_RATE_PER_MINUTE=3):
        for _attempt in range(2):  # a minute boundary may fall inside the loop: then once more
            for key in counter.scan_iter(match=":1:throttle:gateway-token:*"):
                counter.delete(key)
            first = lease(client, token, lease_budget)  # a miss: counted in the lookup, not again
            assert first.status_code == 200 and counted() == 1
            with CaptureQueriesContext(connection) as queries:
                again = lease(client, token, lease_budget)  # a hit: the grant is the only query
            assert again.status_code == 200 and counted() == 2
            assert len(queries) == 1 and "governance_budget_lease_grant" in queries[0]["sql"]
            # Through the DRF view (an Accept header the hot path leaves to it): the same counter.
            drf = client.post(
                LEASES, {"budget": lease_budget.pk, "amount": "1"}, content_type="application/json",
                HTTP_ACCEPT="application/json, text/plain", **bearer(token),
            )  # fmt: skip
            assert drf.status_code == 200 and counted() == 3
            leases_before = Lease.objects.count()
            refused = lease(client, token, lease_budget)
            if counted() == 4:
                break
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 60
    assert Lease.objects.count() == leases_before  # refused: nothing granted


def test_a_lease_token_revoked_in_another_process_stops_working_at_once(
    pull_gateway, shared_cache, lease_budget
):
    gateway, token = pull_gateway
    client = Client()
    assert lease(client, token, lease_budget).status_code == 200
    assert lease(client, token, lease_budget).status_code == 200  # authenticated from the cache
    other_process(
        "from django.core.management import call_command\n"
        f"call_command('gateway_token', {gateway.slug!r}, revoke=True)",
        shared_cache,
    )
    before = Lease.objects.count()
    assert lease(client, token, lease_budget).status_code == 401
    assert Lease.objects.count() == before


def test_a_lease_token_rotated_in_another_process_stops_working_at_once(
    pull_gateway, shared_cache, lease_budget
):
    gateway, token = pull_gateway
    client = Client()
    assert lease(client, token, lease_budget).status_code == 200
    assert lease(client, token, lease_budget).status_code == 200
    new_token = other_process(
        "from routing.models import Gateway\nfrom routing.services import gateway_token_rotate\n"
        f"print(gateway_token_rotate(gateway=Gateway.objects.get(slug={gateway.slug!r}), actor=None))",
        shared_cache,
    )
    assert lease(client, token, lease_budget).status_code == 401
    assert lease(client, new_token, lease_budget).status_code == 200


def test_a_deleted_gateway_gets_no_lease_from_the_cache(pull_gateway, shared_cache, lease_budget):
    gateway, token = pull_gateway
    client = Client()
    assert lease(client, token, lease_budget).status_code == 200
    Gateway.objects.filter(pk=gateway.pk).delete()
    assert lease(client, token, lease_budget).status_code == 401


def test_a_gateway_entry_read_before_a_revocation_is_never_used(pull_gateway, shared_cache, lease_budget):
    gateway, token = pull_gateway
    generation = policy_cache.policy_cache_generation()  # the authenticating request starts...
    services.gateway_token_revoke(gateway=gateway, actor=None)  # ...the revocation commits...
    policy_cache.gateway_token_cache_store(  # ...and the request stores what it read before it
        generation=generation, token_hash=hash_token(token), gateway_id=gateway.id, slug=gateway.slug
    )
    assert lease(Client(), token, lease_budget).status_code == 401
