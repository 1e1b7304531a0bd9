"""The Overview's warm-up: after any write, the pages its recent readers had computed (unfiltered
and filtered) are rendered again, so their next request is served from the cache with the new data
(attribution/views/overview.py, overview_warm_recent; run by the beat every 30 s and after the
bulk-writing tasks)."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from attribution.costs.data_version import data_version_bump
from attribution.costs.tasks import overview_warm_task
from attribution.models import Team
from attribution.views.overview import WARMING_KEY, recent_reader_pages
from tests.attribution.views.test_overview_cache import WARM_QUERIES, _content, _get
from tests.attribution.views.test_overview_page import LATEST, build_world

pytestmark = pytest.mark.django_db

# A filtered page as remembered: the filter fields given, in the form's order.
AWS = "provider=aws"


@pytest.fixture
def world():
    cache.clear()  # the memory cache outlives a test
    return build_world()


@pytest.fixture
def eager_celery():
    from config.celery_app import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def redis_cache(settings):
    url = str(settings.CELERY_BROKER_URL)
    if not url.startswith("redis://"):
        pytest.fail(f"These tests need Redis (TEST_REDIS_URL), not {url!r}.")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"test-warm-{uuid.uuid4().hex}",  # this test's keys only; they expire
        }
    }
    settings.OVERVIEW_CACHE_SECONDS = 60  # left to expire: never flush a Redis others share


def test_a_rename_outside_any_task_is_warm_after_the_beats_warm_up(client, world):
    """No task ran: only the beat's warm-up, which sees the data version moved."""
    finance = world["people"]["finance"]
    _get(client, finance)
    Team.objects.filter(slug="gamma").update(name="Gamma Renamed")
    assert overview_warm_task() == {"rendered": 1, "cached": 0}
    page, queries = _get(client, finance)
    assert queries == WARM_QUERIES["admin"] and "Gamma Renamed" in page


def test_a_readers_filtered_view_is_warm_after_a_write_and_equals_the_computed_page(
    client, world, settings, redis_cache
):
    lead = world["people"]["lead"]
    before, _ = _get(client, lead, {"provider": "aws"})
    assert "300.30" in before  # alpha's AWS cost, the only AWS cost the lead sees
    assert recent_reader_pages() == [(lead.pk, [AWS])]
    # An ingest-like write: a new daily cost row of alpha on AWS.
    world["cost"](LATEST, world["accounts"][0], world["teams"][0], None, None, "1.00", currency="USD")
    assert overview_warm_task() == {"rendered": 1, "cached": 0}  # the filtered page only: all the lead read
    warm, queries = _get(client, lead, {"provider": "aws"})
    assert queries == WARM_QUERIES["lead"] and "301.30" in warm
    # What was warmed is what the page computes for that request.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "fresh"}
    }
    computed, computed_queries = _get(client, lead, {"provider": "aws"})
    assert computed_queries > WARM_QUERIES["lead"]
    assert _content(computed) == _content(warm)


def test_invalid_filters_are_not_remembered(client, world):
    lead = world["people"]["lead"]
    gamma = world["teams"][2]
    for bad in (
        {"start": "2026-10-10", "end": "2026-10-01"},  # the range backwards
        {"team": str(gamma.pk)},  # a team the lead does not see
        {"provider": "oracle"},
        {"start": "not-a-date", "end": "2026-10-01"},
    ):
        page, _ = _get(client, lead, bad)
        assert 'class="alert alert--error" role="alert"' in page
    assert recent_reader_pages() == []
    # Unknown parameters are not filters: the same page as ?provider=aws, remembered once.
    _get(client, lead, {"provider": "aws", "utm_source": "mail"})
    _get(client, lead, {"utm_source": "mail"})  # a bound form without filters: no query asks for it
    _get(client, lead, {"provider": "aws"})
    assert recent_reader_pages() == [(lead.pk, [AWS])]
    # An empty field is given (the form renders it apart from an absent one): a page of its own.
    _get(client, lead, {"start": "", "end": "", "provider": "gcp"})
    assert recent_reader_pages() == [(lead.pk, ["start=&end=&provider=gcp", AWS])]


def test_the_beat_does_nothing_while_the_version_stays(client, world):
    _get(client, world["people"]["finance"])
    data_version_bump()
    assert overview_warm_task() == {"rendered": 1, "cached": 0}
    entries = dict(cache._cache)
    with CaptureQueriesContext(connection) as captured:
        assert overview_warm_task() == {"rendered": 0, "cached": 0}
    assert len(captured.captured_queries) == 2  # the fold (nothing to fold) and the data version
    assert dict(cache._cache) == entries


def test_one_warm_up_at_a_time_and_the_next_catches_up(client, world):
    finance = world["people"]["finance"]
    _get(client, finance)
    data_version_bump()
    cache.add(WARMING_KEY, "another warm-up", 60)
    assert overview_warm_task() == {"rendered": 0, "cached": 0, "busy": 1}
    cache.delete(WARMING_KEY)  # that warm-up finished (for an older version)
    assert overview_warm_task() == {"rendered": 1, "cached": 0}
    assert _get(client, finance)[1] == WARM_QUERIES["admin"]


def test_the_tasks_that_change_the_data_warm_the_page_of_its_recent_readers(client, world, eager_celery):
    """An allocation (a Celery task that writes what the page reads) renders the pages served lately
    again at once, so their next request is a cached one with the new data."""
    from attribution.allocation.tasks import allocation_days_task

    finance, lead = world["people"]["finance"], world["people"]["lead"]
    assert "480.66" in _get(client, finance)[0]
    _get(client, lead)
    world["cost"](LATEST, world["accounts"][0], world["teams"][0], None, None, "1.00", currency="USD")
    allocation_days_task.delay(None, [LATEST.isoformat()])
    warm, warm_queries = _get(client, finance)
    assert warm_queries == WARM_QUERIES["admin"] and "481.66" in warm
    lead_warm, lead_queries = _get(client, lead)
    assert lead_queries == WARM_QUERIES["lead"]
    # What was warmed is what the page computes.
    cache.clear()
    assert _content(_get(client, finance)[0]) == _content(warm)
    assert _content(_get(client, lead)[0]) == _content(lead_warm)
