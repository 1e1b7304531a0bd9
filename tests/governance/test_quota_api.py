"""Quotas over the API: who may change which, audited, and the limit in force after actions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from governance.models import AuditEvent, BudgetEnforcement, Quota
from tests.factories import BudgetFactory, MembershipFactory, ServedModelFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/quotas"

# persona: (create for the lead's team, update it, sees it)
MATRIX = {
    "admin": (201, 200, True),
    "finance": (201, 200, True),
    "lead": (201, 200, True),
    "other_lead": (403, 404, False),
    "viewer": (403, 403, True),
    "anonymous": (401, 401, False),
}


@pytest.fixture
def world():
    team, other = TeamFactory(slug="search"), TeamFactory(slug="ads")
    ServedModelFactory(slug="llama")
    users = {
        "admin": UserFactory(username="admin1", roles=["admin"]),
        "finance": UserFactory(username="finance1", roles=["finance"]),
        "lead": UserFactory(username="lead1", roles=["team_lead"]),
        "other_lead": UserFactory(username="lead2", roles=["team_lead"]),
        "viewer": UserFactory(username="viewer1", roles=["viewer"]),
        "anonymous": None,
    }
    MembershipFactory(user=users["lead"], team=team, role="lead")
    MembershipFactory(user=users["other_lead"], team=other, role="lead")
    MembershipFactory(user=users["viewer"], team=team, role="member")
    quota = Quota.objects.create(team=team, metric="requests", window="day", limit=1000)
    return {"team": team, "users": users, "quota": quota}


@pytest.mark.parametrize("persona", list(MATRIX))
def test_permission_matrix(world, persona):
    create, update, sees = MATRIX[persona]
    client = APIClient()
    if world["users"][persona]:
        client.force_authenticate(world["users"][persona])
    body = {"team": "search", "model": "llama", "metric": "tokens", "window": "minute", "limit": 50_000}
    assert client.post(URL, body, format="json").status_code == create
    quota = world["quota"]
    change = {"team": "search", "metric": "requests", "window": "day", "limit": 2000}
    assert client.put(f"{URL}/{quota.pk}", change, format="json").status_code == update
    quota.refresh_from_db()
    assert quota.limit == (2000 if update == 200 else 1000)
    listing = client.get(URL)
    if persona != "anonymous":
        assert (quota.pk in [row["id"] for row in listing.json()["results"]]) is sees
    expected_audits = (create == 201) + (update == 200)
    assert AuditEvent.objects.filter(object_type="governance.quota").count() == expected_audits


def test_bad_limits_are_400_and_the_effective_limit_follows_a_block(world):
    client = APIClient()
    client.force_authenticate(world["users"]["lead"])
    bad = client.post(
        URL, {"team": "search", "metric": "tokens", "window": "minute", "limit": -3}, format="json"
    )
    assert bad.status_code == 400 and "above zero" in bad.json()["limit"][0]
    assert Quota.objects.count() == 1
    budget = BudgetFactory(team=world["team"], amount=Decimal("10"))
    BudgetEnforcement.objects.create(
        budget=budget, action="block", basis="actual", period_start=dt.date(2026, 11, 1),
        period_end=dt.date(2026, 12, 1), limit_amount=Decimal("10"), reason="Search over budget",
        applied_at=dt.datetime.now(dt.UTC),
    )  # fmt: skip
    [row] = client.get(URL).json()["results"]
    assert (row["limit"], row["effective_limit"], row["effective_reason"]) == (1000, 0, "Search over budget")


def test_the_list_is_filtered_by_team_and_model(world):
    search, ads = (
        TeamFactory._meta.model.objects.get(slug="search"),
        TeamFactory._meta.model.objects.get(slug="ads"),
    )
    llama = ServedModelFactory._meta.model.objects.get(slug="llama")
    Quota.objects.create(team=search, model=llama, metric="tokens", window="minute", limit=100)
    Quota.objects.create(team=ads, model=None, metric="requests", window="day", limit=7)
    client = APIClient()
    client.force_authenticate(world["users"]["finance"])
    assert [row["limit"] for row in client.get(URL, {"team": "ads"}).json()["results"]] == [7]
    assert [row["team"] for row in client.get(URL, {"model": "llama"}).json()["results"]] == ["search"]
    assert client.get(URL, {"team": "nobody"}).json()["results"] == []
