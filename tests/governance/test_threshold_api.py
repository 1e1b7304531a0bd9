"""`/api/v1/thresholds`: one budget threshold as its own resource. The permission matrix (admin,
finance, lead of the team, lead of another team, viewer, anonymous), bad input answered 400 naming
the field with nothing stored, every change audited, and the actions a changed or deleted threshold
had applied lifted."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from rest_framework.test import APIClient

from governance import selectors
from governance.choices import LiftReason
from governance.models import AuditEvent, BudgetEvent, BudgetThreshold
from tests.factories import (
    BudgetFactory,
    CloudAccountFactory,
    DailyCostFactory,
    MembershipFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/thresholds"
NOV_10 = dt.datetime(2026, 11, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def world():
    team, other = TeamFactory(slug="search", name="Search"), TeamFactory(slug="ads", name="Ads")
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
    budget = BudgetFactory(team=team, name="Search monthly", amount=Decimal("1000"))
    threshold = BudgetThreshold.objects.create(budget=budget, percent=Decimal("80"), action="notify")
    org_budget = BudgetFactory(team=None, name="Company", amount=Decimal("90000"))
    return {"team": team, "users": users, "budget": budget, "threshold": threshold, "org_budget": org_budget}


def _client(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


# persona: (sees the threshold, create on the team's budget, update it, delete it, create org-wide)
MATRIX = {
    "admin": (True, 201, 200, 204, 201),
    "finance": (True, 201, 200, 204, 201),
    "lead": (True, 201, 200, 204, 400),
    "other_lead": (False, 400, 404, 404, 400),
    "viewer": (True, 403, 403, 403, 400),
    "anonymous": (False, 401, 401, 401, 401),
}


@pytest.mark.parametrize("persona", list(MATRIX))
def test_permission_matrix(world, persona):
    sees, create, update, delete, org_wide = MATRIX[persona]
    client = _client(world["users"][persona])
    budget, threshold = world["budget"], world["threshold"]

    listing = client.get(URL)
    if persona == "anonymous":
        assert listing.status_code == 401
    else:
        assert listing.status_code == 200
        assert (threshold.pk in [row["id"] for row in listing.json()["results"]]) is sees
    detail = client.get(f"{URL}/{threshold.pk}")
    assert detail.status_code == (200 if sees else 401 if persona == "anonymous" else 404)

    block = {"budget": budget.pk, "percent": "100", "action": "block"}
    assert client.post(URL, block, format="json").status_code == create
    org = {"budget": world["org_budget"].pk, "percent": "90", "action": "notify"}
    # The organisation-wide budget is seen by admin and finance only: for team roles it does not exist.
    assert client.post(URL, org, format="json").status_code == org_wide
    changed = client.put(
        f"{URL}/{threshold.pk}", {"budget": budget.pk, "percent": "85", "action": "notify"}, format="json"
    )
    assert changed.status_code == update
    threshold.refresh_from_db()
    assert threshold.percent == (Decimal("85") if update == 200 else Decimal("80"))
    assert client.delete(f"{URL}/{threshold.pk}").status_code == delete
    assert BudgetThreshold.objects.filter(pk=threshold.pk).exists() is (delete != 204)
    audited = AuditEvent.objects.filter(object_type="governance.budgetthreshold")
    assert audited.count() == [create, update, delete, org_wide].count(201) + (update == 200) + (
        delete == 204
    )


def test_a_created_threshold_is_audited_and_shown_with_its_limit(world):
    client = _client(world["users"]["lead"])
    response = client.post(
        URL,
        {"budget": world["budget"].pk, "amount": "950.00", "basis": "forecast", "action": "throttle",
         "throttle_share": "0.25"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["limit"], body["currency"], body["effective_action"]) == ("950.00", "USD", "throttle")
    event = AuditEvent.objects.get(object_type="governance.budgetthreshold", object_id=str(body["id"]))
    assert (event.action, event.actor_label) == ("create", "lead1")
    assert event.changes["amount"] == "950.0000000000" and event.changes["throttle_share"] == "0.2500"
    # The budget's own view shows it too.
    nested = client.get(f"/api/v1/budgets/{world['budget'].pk}").json()["thresholds"]
    assert body["id"] in [row["id"] for row in nested]


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"percent": "1500"}, "percent", "at most 1000"),
        ({"percent": "0.004"}, "percent", "above 0"),
        ({"amount": "-5"}, "amount", "greater than zero"),
        ({"percent": "50", "amount": "10"}, "percent", "not both"),
        ({}, "percent", "either a percent or an amount"),
        ({"percent": "50", "action": "throttle"}, "throttle_share", "needs throttle_share"),
        ({"percent": "50", "action": "notify", "throttle_share": "0.5"}, "throttle_share", "only for"),
        ({"percent": "80"}, "percent", "already has a threshold"),
        ({"percent": "50", "basis": "yearly"}, "basis", "valid choice"),
        ({"percent": "lots"}, "percent", "number"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_nothing_is_stored(world, payload, field, words):
    client = _client(world["users"]["admin"])
    second = BudgetThreshold.objects.create(budget=world["budget"], percent=Decimal("90"), action="notify")
    before = list(BudgetThreshold.objects.values_list("id", "percent", "amount"))
    response = client.post(URL, {"budget": world["budget"].pk, **payload}, format="json")
    assert response.status_code == 400, response.content
    assert words in " ".join(response.json()[field]), response.json()
    changed = client.put(f"{URL}/{second.pk}", {"budget": world["budget"].pk, **payload}, format="json")
    assert changed.status_code == 400 and words in " ".join(changed.json()[field])
    assert list(BudgetThreshold.objects.values_list("id", "percent", "amount")) == before
    assert not AuditEvent.objects.filter(object_type="governance.budgetthreshold").exists()


def test_a_threshold_stays_with_its_budget(world):
    other_budget = BudgetFactory(team=world["team"], name="Search other", amount=Decimal("10"))
    response = _client(world["users"]["admin"]).put(
        f"{URL}/{world['threshold'].pk}", {"budget": other_budget.pk, "percent": "80"}, format="json"
    )
    assert response.status_code == 400 and "stays with its budget" in response.json()["budget"][0]
    assert BudgetThreshold.objects.get(pk=world["threshold"].pk).budget_id == world["budget"].pk


def test_changing_what_a_crossed_threshold_does_lifts_its_action_and_applies_the_new_one(world):
    account = CloudAccountFactory(slug="aws-main", provider="aws")
    DailyCostFactory(
        team=world["team"], account=account, day=dt.date(2026, 11, 2), billed_cost=Decimal("900"),
        effective_cost=Decimal("900"), billing_currency="USD",
    )  # fmt: skip
    budget, threshold = world["budget"], world["threshold"]
    client = _client(world["users"]["lead"])
    with time_machine.travel(NOV_10, tick=False):
        throttle = {"budget": budget.pk, "percent": "80", "action": "throttle", "throttle_share": "0.5"}
        assert client.put(f"{URL}/{threshold.pk}", throttle, format="json").status_code == 200
        assert [state.action for state in selectors.enforcement_active()] == ["throttle"]

        block = {"budget": budget.pk, "percent": "80", "action": "block"}
        assert client.put(f"{URL}/{threshold.pk}", block, format="json").status_code == 200
        assert [state.action for state in selectors.enforcement_active()] == ["block"]
        lifted = BudgetEvent.objects.get(budget=budget, kind="lifted")
        assert lifted.lift_reason == LiftReason.THRESHOLD_REMOVED

        # Raised above the spend (900 of 1000): the block lifts, as a raised budget's does.
        raised = {"budget": budget.pk, "percent": "95", "action": "block"}
        assert client.put(f"{URL}/{threshold.pk}", raised, format="json").status_code == 200
        assert selectors.enforcement_active() == []

        lowered = {"budget": budget.pk, "percent": "50", "action": "block"}
        assert client.put(f"{URL}/{threshold.pk}", lowered, format="json").status_code == 200
        assert [state.action for state in selectors.enforcement_active()] == ["block"]
        assert client.delete(f"{URL}/{threshold.pk}").status_code == 204
        assert selectors.enforcement_active() == []
    # The id stayed the same through every change; each one is in the audit log.
    actions = list(
        AuditEvent.objects.filter(object_type="governance.budgetthreshold", object_id=str(threshold.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["update", "update", "update", "update", "delete"]


def test_the_list_is_filtered_and_paginated(world):
    other = BudgetFactory(team=TeamFactory(slug="fraud"), name="Fraud", amount=Decimal("10"))
    BudgetThreshold.objects.create(budget=other, amount=Decimal("5"), basis="forecast")
    client = _client(world["users"]["finance"])
    assert [row["budget"] for row in client.get(URL, {"team": "search"}).json()["results"]] == [
        world["budget"].pk
    ]
    assert [row["amount"] for row in client.get(URL, {"basis": "forecast"}).json()["results"]] == [
        "5.0000000000"
    ]
    page = client.get(URL, {"limit": 1}).json()
    assert page["count"] == 2 and len(page["results"]) == 1
