"""The Overview's cache: served again only while nothing it reads has changed, never across scopes.

The content is keyed on the data version (attribution/costs/data_version.py), which statement
triggers bump on every write to a table the page reads; the user's visible scope is in the key."""

from __future__ import annotations

import os
import re
import uuid
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from attribution.costs.data_version import FOLD_AFTER, data_version, data_version_bump, data_version_fold
from attribution.models import DailyCost, Deployment, Team, UsageDaily
from attribution.views.overview import overview_warm_recent
from governance.models import Alert
from tests.attribution.views.test_overview_page import LATEST, OVERVIEW, add_allocation, build_world
from tests.factories import DeploymentFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """The overview page tests' company: three teams, two clouds, five people of four roles."""
    return build_world()


# Served from the cache: the session, the user, their permissions (two: user and group; they decide
# the scope), the data version and the role badge's groups; a lead's teams (the scope) besides.
WARM_QUERIES = {"admin": 6, "lead": 7}


def _get(client, user, params=None):
    client.force_login(user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(OVERVIEW, params or {})
    assert response.status_code == 200
    return response.content.decode(), len(captured.captured_queries)


def _content(html: str) -> str:
    """The cached part of the page (what is inside <main>, without the messages)."""
    return html[html.index('<div class="page-header">') : html.index("</main>")]


@pytest.mark.parametrize("persona", ["admin", "lead"])
def test_an_unchanged_page_is_served_from_the_cache_with_the_same_content(client, world, persona, settings):
    user = world["people"][persona]
    cold, cold_queries = _get(client, user)
    warm, warm_queries = _get(client, user)
    assert _content(warm) == _content(cold)
    assert warm_queries == WARM_QUERIES[persona] < cold_queries
    # And the same as computed without any cache.
    settings.OVERVIEW_CACHE_SECONDS = 0
    cache.clear()
    uncached, _ = _get(client, user)
    assert _content(uncached) == _content(warm)


def test_it_caches_in_redis_as_production_does(client, world, settings):
    """Production's cache is Redis (settings.base): the entry survives its round trip there."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"),
            "KEY_PREFIX": f"test-overview-{uuid.uuid4().hex}",  # this test's keys only
        }
    }
    settings.OVERVIEW_CACHE_SECONDS = 60  # left to expire: never flush a Redis others share
    finance = world["people"]["finance"]
    cold, cold_queries = _get(client, finance)
    warm, warm_queries = _get(client, finance)
    assert warm_queries == WARM_QUERIES["admin"] < cold_queries
    assert _content(warm) == _content(cold) and "480.66" in warm
    world["cost"](LATEST, world["accounts"][0], world["teams"][0], None, None, "1.00")
    assert "481.66" in _get(client, finance)[0]


def test_it_computes_the_page_when_redis_is_unreachable(client, world, settings, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 0.5},
        }
    }
    page, _ = _get(client, world["people"]["finance"])
    assert "480.66" in page
    assert "Overview cache unavailable" in caplog.text


def test_a_new_cost_row_shows_on_the_next_request(client, world):
    finance = world["people"]["finance"]
    before, _ = _get(client, finance)
    assert "480.66" in before
    aws = world["accounts"][0]
    alpha = world["teams"][0]
    world["cost"](LATEST, aws, alpha, None, None, "1.00", currency="USD")
    after, _ = _get(client, finance)
    assert "481.66" in after and "480.66" not in after


def test_an_update_and_a_delete_in_bulk_show_on_the_next_request(client, world):
    finance = world["people"]["finance"]
    _get(client, finance)
    DailyCost.objects.filter(billed_cost=Decimal("12.34")).update(billed_cost=Decimal("13.34"))
    assert "483.66" in _get(client, finance)[0]
    with connection.cursor() as cursor:  # raw SQL, no Django signal: the trigger still sees it
        cursor.execute("DELETE FROM attribution_dailycost WHERE billed_cost = 13.34")
    assert "443.64" in _get(client, finance)[0]


def test_a_new_alert_shows_on_the_next_request(client, world):
    admin = world["people"]["admin"]
    before, _ = _get(client, admin)
    Alert.objects.create(kind="anomaly", team=world["teams"][0], message="spike", dedup_key="spike-1")
    after, _ = _get(client, admin)
    count = re.compile(r'id="open-alerts-count"><strong>(\d+)</strong>')
    assert count.search(after).group(1) == str(int((count.search(before) or [None, "0"])[1]) + 1)


def test_a_team_rename_shows_on_the_next_request(client, world):
    finance = world["people"]["finance"]
    _get(client, finance)
    Team.objects.filter(slug="gamma").update(name="Gamma Renamed")
    assert "Gamma Renamed" in _get(client, finance)[0]


def test_a_lead_never_gets_a_page_cached_for_another_scope(client, world):
    people = world["people"]
    alpha, beta, _gamma = world["teams"]
    lead_page, _ = _get(client, people["lead"])  # alpha and beta: 420.33
    assert "420.33" in lead_page
    viewer_page, viewer_queries = _get(client, people["viewer"])  # beta only
    assert "420.33" not in viewer_page and "120.03" in viewer_page
    assert viewer_queries > WARM_QUERIES["lead"]  # computed, not served from the lead's entry
    # Same scope, another person: the same entry.
    other_lead = UserFactory(username="lead2", roles=["team_lead"])
    MembershipFactory(user=other_lead, team=alpha, role="lead")
    MembershipFactory(user=other_lead, team=beta, role="lead")
    other_page, other_queries = _get(client, other_lead)
    assert other_queries == WARM_QUERIES["lead"]
    assert _content(other_page) == _content(lead_page)
    # A membership change changes the scope, so the key: the viewer now sees alpha too.
    MembershipFactory(user=people["viewer"], team=alpha, role="member")
    assert "420.33" in _get(client, people["viewer"])[0]
    # Finance sees everything: its own entry, not a lead's.
    assert "480.66" in _get(client, people["finance"])[0]


def test_filters_are_part_of_the_key(client, world):
    admin = world["people"]["admin"]
    everything, _ = _get(client, admin)
    gcp_only, queries = _get(client, admin, {"provider": "gcp"})
    assert queries > WARM_QUERIES["admin"]
    assert _content(gcp_only) != _content(everything)
    # A bad filter is reported again when served from the cache.
    bad = {"start": "2026-10-10", "end": "2026-10-01"}
    _get(client, admin, bad)
    again, queries = _get(client, admin, bad)
    assert queries == WARM_QUERIES["admin"]
    assert "The start date must be on or before the end date." in again


def test_the_version_changes_with_every_write_and_survives_folding(django_assert_num_queries):
    """Folding (the warm-up beat's) keeps the version exactly, so no cached page is lost to it, and
    reading the version is one query that never writes, however many rows have piled up."""
    first = data_version()
    data_version_bump()
    second = data_version()
    assert second != first
    for _ in range(FOLD_AFTER + 1):
        data_version_bump()
    with django_assert_num_queries(1):
        before_fold = data_version()
    assert data_version() == before_fold  # a read folds nothing
    assert data_version_fold()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), sum(weight), max(id) FROM attribution_datachange")
        rows, weight, last = cursor.fetchone()
    total, highest = before_fold.split(".")
    assert (rows, weight, last) == (1, int(total), int(highest))
    assert data_version() == before_fold
    assert not data_version_fold()  # one row: nothing to fold
    data_version_bump()
    assert data_version().split(".")[0] == str(int(total) + 1)


def test_the_warm_up_beat_folds_the_change_rows_and_keeps_the_cached_pages(client, world):
    admin = world["people"]["admin"]
    for _ in range(FOLD_AFTER + 1):
        data_version_bump()
    page, _ = _get(client, admin)
    overview_warm_recent()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM attribution_datachange")
        assert cursor.fetchone()[0] == 1
    again, queries = _get(client, admin)
    assert queries == WARM_QUERIES["admin"] and _content(again) == _content(page)


# Tables whose rows only decide who the user is and what scope they have: in the key, not the version.
SCOPE_TABLES = {
    "auth_user",
    "auth_group",
    "auth_permission",
    "auth_group_permissions",
    "auth_user_groups",
    "auth_user_user_permissions",
    "django_content_type",
    "django_session",
    "governance_membership",
    "attribution_datachange",
}


def test_every_table_the_page_reads_bumps_the_version(client, world, settings):
    settings.OVERVIEW_CACHE_SECONDS = 0
    read: set[str] = set()
    # Every panel with something to read: estimates, unit costs, allocation (add_allocation), an
    # alert, and routed usage over two deployments of a model, one costed by its price card only.
    add_allocation(world)
    Alert.objects.create(kind="anomaly", team=world["teams"][0], message="spike", dedup_key="spike-2")
    llama, llama_aws = world["models"][0], world["deployments"][0]
    llama_gcp = DeploymentFactory(slug="llama-gcp", model=llama, provider="gcp")
    Deployment.objects.filter(pk__in=[llama_aws.pk, llama_gcp.pk]).update(state="active")
    for deployment in (llama_aws, llama_gcp):
        UsageDaily.objects.create(
            day=LATEST, deployment=deployment, team=world["teams"][0], model=llama,
            requests=1, input_tokens=1_000_000, output_tokens=0,
        )  # fmt: skip
    for persona in ("admin", "lead"):
        client.force_login(world["people"][persona])
        for params in ({}, {"provider": "aws", "team": "unallocated"}):
            with CaptureQueriesContext(connection) as captured:
                client.get(OVERVIEW, params)
            for query in captured.captured_queries:
                read |= set(re.findall(r'(?:FROM|JOIN)\s+"(\w+)"', query["sql"]))
    with connection.cursor() as cursor:
        # Watched: an after-statement trigger of ours for each of INSERT, UPDATE, DELETE and TRUNCATE
        # (pg_trigger.tgtype bits: 1 row, 2 before, 4 insert, 8 delete, 16 update, 32 truncate).
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname LIKE c.relname || '\\_data\\_%' AND t.tgtype & 3 = 0 "
            "GROUP BY c.relname HAVING bit_or(t.tgtype) & 60 = 60"
        )
        watched = {name for (name,) in cursor.fetchall()}
    exercised = {"attribution_dailycost", "attribution_spendestimate", "attribution_pricecard"}
    assert exercised | {"governance_alert"} <= read
    assert read - SCOPE_TABLES <= watched, f"read but not watched: {read - SCOPE_TABLES - watched}"
