"""Login throttling (django-axes) and API token rate limits (DRF throttles): issue 15, defect 5."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from governance.services import api_token_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def post_login(client: Client, url: str, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_wrong_passwords_lock_the_username_and_then_even_the_right_one_is_refused(settings, url):
    UserFactory(username="fiona", roles=["finance"], is_staff=True)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert post_login(client, url, "fiona", "wrong").status_code == 200
    locked = post_login(client, url, "fiona", "wrong")
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())
    assert "Too many login attempts" in locked.content.decode()

    # From another address, with the right password: still refused (throttled by username).
    assert post_login(Client(), url, "fiona", PASSWORD, address="10.9.9.9").status_code == 429


def test_one_address_guessing_many_usernames_is_locked_out(settings):
    for number in range(settings.AXES_FAILURE_LIMIT + 1):
        UserFactory(username=f"user{number}")
    client = Client()
    statuses = [
        post_login(client, "/login/", f"user{number}", "wrong").status_code
        for number in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses[-1] == 429 and set(statuses[:-1]) == {200}
    # A user never tried before, right password, same address: refused (throttled by address).
    assert post_login(client, "/login/", f"user{settings.AXES_FAILURE_LIMIT}", PASSWORD).status_code == 429
    # The same user from another address logs in.
    response = post_login(Client(), "/login/", f"user{settings.AXES_FAILURE_LIMIT}", PASSWORD, "10.0.0.2")
    assert response.status_code == 302


def test_a_few_wrong_passwords_then_the_right_one_logs_in_and_resets_the_count(settings):
    UserFactory(username="fiona")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        post_login(client, "/login/", "fiona", "wrong")
    assert post_login(client, "/login/", "fiona", PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert post_login(client, "/login/", "fiona", "wrong").status_code == 200


def test_an_api_token_over_its_rate_gets_429_with_retry_after(settings):
    settings.API_TOKEN_RATE_PER_MINUTE = 3
    _, plaintext = api_token_create(user=UserFactory(username="bot"), name="bot", scopes=["read"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert [client.get("/api/v1/me").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/api/v1/me")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    # Another token has its own budget; a session is not rate-limited by token.
    _, other = api_token_create(user=UserFactory(username="bot2"), name="bot2", scopes=["read"])
    assert Client(HTTP_AUTHORIZATION=f"Bearer {other}").get("/api/v1/me").status_code == 200
    session = Client()
    session.force_login(UserFactory(username="human"))
    assert {session.get("/api/v1/me").status_code for _ in range(5)} == {200}


@pytest.mark.parametrize("backend", ["redis", "locmem"])
def test_the_token_rate_counter_counts_every_concurrent_request_once(settings, backend):
    """DRF's SimpleRateThrottle read a list of times, appended and wrote it back: concurrent
    requests of one token overwrote each other and a burst was under-counted. The counter is one
    atomic increment: 20 threads x 15 requests against a rate of 200 admit exactly 200."""
    import threading

    from django.core.cache import caches

    from attribution.api.access import token_rate_hit

    if backend == "redis":
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": str(settings.CELERY_BROKER_URL),
            }
        }
    caches["default"].clear()
    moment = 1_800_000_000.0 + 7  # one fixed window, 53 s before it ends
    admitted, barrier = [], threading.Barrier(20)

    def replica() -> None:
        barrier.wait()
        for _ in range(15):
            within, retry_after = token_rate_hit(key="throttle:test:1", per_minute=200, now=moment)
            admitted.append(within)
            assert retry_after == 53

    threads = [threading.Thread(target=replica) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (admitted.count(True), admitted.count(False)) == (200, 100)
    # The next window starts a new count.
    assert token_rate_hit(key="throttle:test:1", per_minute=200, now=moment + 60) == (True, 53)
    caches["default"].clear()
