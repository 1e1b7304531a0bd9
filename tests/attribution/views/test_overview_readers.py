"""Who recently read which Overview pages (so overview_warm renders them again for them after a
write): in production's Redis, concurrent first requests in several web processes all land."""

from __future__ import annotations

import threading
import uuid
from types import SimpleNamespace

import pytest

from attribution.views import overview

WRITERS = 8
READERS_EACH = 5  # 40 readers in all: under READERS_MAX, so none may be trimmed


@pytest.fixture
def redis_cache(settings):
    url = str(settings.CELERY_BROKER_URL)
    if not url.startswith("redis://"):
        pytest.fail(f"These tests need Redis (TEST_REDIS_URL), not {url!r}.")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"test-readers-{uuid.uuid4().hex}",  # this test's keys only; they expire
        }
    }


def _readers() -> list[int]:
    return [user_id for user_id, _pages in overview.recent_reader_pages()]


def _remember_concurrently(user_ids_per_writer: list[list[int]]) -> None:
    """Each writer (a thread with its own Redis connection, as a web process has) remembers its
    readers, all starting at the same moment."""
    start = threading.Barrier(len(user_ids_per_writer))
    errors: list[BaseException] = []

    def write(user_ids: list[int]) -> None:
        try:
            start.wait()
            for user_id in user_ids:
                overview._remember_reader(user_id)
        except BaseException as error:  # re-raised in the test's thread below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(ids,)) for ids in user_ids_per_writer]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_concurrent_first_readers_are_all_remembered(redis_cache):
    ids = [[writer * 100 + n for n in range(READERS_EACH)] for writer in range(WRITERS)]
    _remember_concurrently(ids)
    assert sorted(_readers()) == sorted(pk for writer in ids for pk in writer)


def test_it_keeps_the_most_recent_readers_first_and_at_most_readers_max(redis_cache):
    for user_id in range(1, overview.READERS_MAX + 11):
        overview._remember_reader(user_id)
    overview._remember_reader(3)  # seen again: now the most recent
    readers = _readers()
    assert len(readers) == overview.READERS_MAX
    assert readers[0] == 3 and readers[1] == overview.READERS_MAX + 10
    assert set(readers) == {3} | set(range(12, overview.READERS_MAX + 11))


def test_a_reader_older_than_a_day_is_forgotten(redis_cache, monkeypatch):
    overview._remember_reader(1)
    later = overview.time.time() + overview.READERS_SECONDS + 1
    monkeypatch.setattr(overview, "time", SimpleNamespace(time=lambda: later))
    assert _readers() == []
    overview._remember_reader(2)
    assert _readers() == [2]


def test_the_memory_cache_of_make_demo_remembers_readers_too(settings):
    assert settings.CACHES["default"]["BACKEND"].endswith("LocMemCache")
    from django.core.cache import cache

    cache.delete(overview.READERS_KEY)
    _remember_concurrently([[1, 2], [3, 4]])
    overview._remember_reader(2)
    assert _readers()[0] == 2 and sorted(_readers()) == [1, 2, 3, 4]


AWS = "provider=aws"


def _pages_are_bounded_per_reader_most_recent_first() -> None:
    pages = [f"team={team}" for team in range(overview.READER_PAGES_MAX + 2)]
    for page in ["", AWS, *pages]:
        overview._remember_reader(7, page)
    overview._remember_reader(8, AWS)
    overview._remember_reader(7, AWS)  # read again: now the most recent
    assert overview.recent_reader_pages() == [
        (7, [AWS, *reversed(pages[-overview.READER_PAGES_MAX + 1 :])]),
        (8, [AWS]),
    ]


def test_it_keeps_each_readers_most_recent_pages_in_redis(redis_cache):
    _pages_are_bounded_per_reader_most_recent_first()


def test_it_keeps_each_readers_most_recent_pages_in_memory(settings):
    from django.core.cache import cache

    cache.delete(overview.READERS_KEY)
    _pages_are_bounded_per_reader_most_recent_first()
