"""The cost API says how much of every figure is billed and how much estimated, converts to the
reporting currency at each charge day's rate (naming it), and scopes rows to the caller's teams."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from attribution.currency.services import exchange_rates_load
from attribution.models import AllocatedCost, SpendEstimate, UnitCost
from governance.models import AuditEvent
from governance.services import api_token_create
from tests.factories import (
    CloudAccountFactory,
    DailyCostFactory,
    DeploymentFactory,
    MembershipFactory,
    ServedModelFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

BILLED_DAY = dt.date(2026, 10, 19)
OPEN_DAY = dt.date(2026, 10, 20)


@pytest.fixture
def world():
    aws = CloudAccountFactory(slug="aws-prod", provider="aws")
    azure = CloudAccountFactory(slug="azure-eu", provider="azure", billing_currency="EUR")
    search, ads = TeamFactory(slug="search", name="Search"), TeamFactory(slug="ads", name="Ads")
    llama = ServedModelFactory(slug="llama", name="llama")
    pool = DeploymentFactory(slug="llama-pool", model=llama, account=aws)
    gptoss = DeploymentFactory(slug="gptoss-azure", model=llama, account=azure, provider="azure")
    # The 19th is billed: AWS allocated (a shared pool split 60/40 plus idle), Azure in EUR.
    DailyCostFactory(
        day=BILLED_DAY, account=aws, team=None, model=llama, deployment=pool, billed_cost=Decimal("110")
    )
    DailyCostFactory(
        day=BILLED_DAY,
        account=azure,
        provider="azure",
        team=search,
        model=llama,
        deployment=gptoss,
        billed_cost=Decimal("50.00"),
        billing_currency="EUR",
    )
    for team, amount, reason in ((search, "60.00", ""), (ads, "40.00", ""), (None, "10.00", "idle")):
        AllocatedCost.objects.create(
            day=BILLED_DAY,
            account=aws,
            billing_period_start=BILLED_DAY.replace(day=1),
            provider="aws",
            team=team,
            model=llama,
            deployment=pool,
            charge_category="Usage",
            billing_currency="USD",
            billed_cost=Decimal(amount),
            effective_cost=Decimal(amount),
            allocated_method_id="tokens" if team else "unallocated",
            unallocated_reason=reason,
        )
    # The 20th is not billed yet: estimates only. One reconciled estimate of the 19th.
    for team, amount in ((search, "70.25"), (ads, "29.75")):
        SpendEstimate.objects.create(
            day=OPEN_DAY,
            deployment=pool,
            team=team,
            model=llama,
            currency="USD",
            estimated_cost=Decimal(amount),
            basis="unit_cost",
        )
    SpendEstimate.objects.create(
        day=BILLED_DAY,
        deployment=pool,
        team=search,
        model=llama,
        currency="USD",
        estimated_cost=Decimal("66.00"),
        basis="unit_cost",
        billed_cost=Decimal("60.00"),
        error=Decimal("6.00"),
        reconciled_at=dt.datetime(2026, 10, 20, tzinfo=dt.UTC),
    )
    exchange_rates_load(
        rows=[{"date": "2026-10-19", "from": "EUR", "to": "USD", "rate": "1.0842"}], source="ecb"
    )
    people = {
        "finance": UserFactory(username="finance", roles=["finance"]),
        "admin": UserFactory(username="admin", roles=["admin"]),
        "lead": UserFactory(username="lead", roles=["team_lead"]),
        "viewer": UserFactory(username="viewer", roles=["viewer"]),
    }
    MembershipFactory(user=people["lead"], team=ads, role="lead")
    return {"people": people, "aws": aws, "pool": pool}


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _by_key(results: list[dict]) -> dict:
    return {(row["key"], row["currency"]): row for row in results}


def test_the_summary_says_how_much_is_billed_and_how_much_estimated(world):
    response = _client(world["people"]["finance"]).get("/api/v1/costs/summary", {"group_by": "team"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["basis"], body["reporting_currency"]) == ("allocated", "USD")
    rows = _by_key(body["results"])
    search = rows[("search", "USD")]
    assert (search["billed"], search["estimated"], search["total"]) == (
        "60.0000000000",
        "70.2500000000",
        "130.2500000000",
    )
    ads = rows[("ads", "USD")]
    assert (ads["billed"], ads["estimated"], ads["total"]) == (
        "40.0000000000",
        "29.7500000000",
        "69.7500000000",
    )
    # The idle share of the pool has no team; it is still counted, never dropped.
    assert rows[(None, "USD")]["billed"] == "10.0000000000"
    # EUR stays EUR, and the reporting figures say which rate converted it.
    eur = rows[("search", "EUR")]
    assert eur["billed"] == "50.0000000000"
    assert eur["reporting"]["billed"] == "54.2100000000"
    assert eur["reporting"]["exchange_rates"] == [{"rate_date": "2026-10-19", "rate": "1.084200000000"}]
    assert search["reporting"]["exchange_rates"] == []


def test_the_billed_basis_follows_the_bill_not_the_allocation(world):
    body = (
        _client(world["people"]["finance"])
        .get("/api/v1/costs/summary", {"group_by": "team", "basis": "billed", "currency": "USD"})
        .json()
    )
    rows = _by_key(body["results"])
    assert rows[(None, "USD")]["billed"] == "110.0000000000"
    assert rows[("search", "USD")]["billed"] == "0.0000000000"
    assert rows[("search", "USD")]["estimated"] == "70.2500000000"


def test_the_summary_by_day_splits_billed_and_estimated_days(world):
    body = (
        _client(world["people"]["admin"])
        .get("/api/v1/costs/summary", {"group_by": "day", "currency": "USD"})
        .json()
    )
    rows = _by_key(body["results"])
    assert (rows[("2026-10-19", "USD")]["billed"], rows[("2026-10-19", "USD")]["estimated"]) == (
        "110.0000000000",
        "0.0000000000",
    )
    assert (rows[("2026-10-20", "USD")]["billed"], rows[("2026-10-20", "USD")]["estimated"]) == (
        "0.0000000000",
        "100.0000000000",
    )


def test_a_team_lead_sees_only_their_teams_billed_and_estimated(world):
    client = _client(world["people"]["lead"])
    rows = client.get("/api/v1/costs/summary", {"group_by": "team"}).json()["results"]
    assert [(row["key"], row["billed"], row["estimated"]) for row in rows] == [
        ("ads", "40.0000000000", "29.7500000000")
    ]
    estimates = client.get("/api/v1/estimates").json()["results"]
    assert {row["team"] for row in estimates} == {"ads"}
    assert client.get("/api/v1/unallocated").json() == []
    costs = client.get("/api/v1/costs").json()["results"]
    assert [(row["team"], row["billed_cost"]) for row in costs] == [("ads", "40.0000000000")]


def test_a_viewer_without_teams_sees_no_figures(world):
    client = _client(world["people"]["viewer"])
    assert client.get("/api/v1/costs/summary", {"group_by": "model"}).json()["results"] == []
    assert client.get("/api/v1/estimates/accuracy").json() == []


def test_unallocated_is_shown_by_reason(world):
    rows = _client(world["people"]["finance"]).get("/api/v1/unallocated").json()
    assert [(row["key"], row["label"], row["currency"], row["billed"]) for row in rows] == [
        ("idle", "idle capacity", "USD", "10.0000000000")
    ]


def test_estimate_accuracy_per_deployment(world):
    rows = _client(world["people"]["finance"]).get("/api/v1/estimates/accuracy").json()
    assert rows == [
        {
            "deployment": "llama-pool",
            "provider": "aws",
            "currency": "USD",
            "days": 1,
            "estimated": "66.0000000000",
            "billed": "60.0000000000",
            "error": "6.0000000000",
            "mape_percent": "10.0000",
            "bias_percent": "10.0000",
            "last_day": "2026-10-19",
        }
    ]


def test_it_rejects_a_bad_group_or_basis(world):
    client = _client(world["people"]["finance"])
    response = client.get("/api/v1/costs/summary", {"group_by": "colour", "basis": "guess"})
    assert response.status_code == 400
    assert set(response.json()) == {"group_by", "basis"}
    response = client.get(
        "/api/v1/costs/summary", {"group_by": "team", "day_from": "2026-10-20", "day_to": "2026-10-01"}
    )
    assert response.status_code == 400


def test_unit_costs_are_listed(world):
    UnitCost.objects.create(
        day=BILLED_DAY,
        model=world["pool"].model,
        deployment=world["pool"],
        provider="aws",
        currency="USD",
        effective_cost=Decimal("110"),
        requests=2000,
        input_tokens=1_000_000,
        output_tokens=100_000,
        cost_per_1m_input_tokens=Decimal("100"),
        cost_per_1m_output_tokens=Decimal("100"),
        cost_per_1k_requests=Decimal("55"),
    )
    rows = (
        _client(world["people"]["viewer"])
        .get("/api/v1/unit-costs", {"deployment": "llama-pool"})
        .json()["results"]
    )
    assert [(row["day"], row["cost_per_1k_requests"], row["input_tokens"]) for row in rows] == [
        ("2026-10-19", "55.0000000000", 1_000_000)
    ]


# --- Exchange rates -----------------------------------------------------------------------------------


RATES = {
    "source": "ecb",
    "rates": [
        {"date": "2026-10-20", "from_currency": "EUR", "to_currency": "USD", "rate": "1.0817"},
        {"date": "2026-10-19", "from_currency": "EUR", "to_currency": "USD", "rate": "1.0850"},
    ],
}


def test_finance_loads_rates_and_the_load_is_audited_as_one_event(world):
    response = _client(world["people"]["finance"]).post("/api/v1/exchange-rates", RATES, format="json")
    assert response.status_code == 201, response.json()
    assert response.json() == {"created": 1, "updated": 1, "unchanged": 0}
    # The fixture's own load is audited too, as the system's.
    (event,) = AuditEvent.objects.filter(object_type="attribution.exchangerate", actor__isnull=False)
    assert (event.action, event.actor_label) == ("bulk_load", "finance")
    assert (event.changes["created"], event.changes["updated"]) == (1, 1)
    assert [(row["date"], row["before"], row["after"]["rate"]) for row in event.changes["rates"]] == [
        ("2026-10-20", None, "1.081700000000"),
        ("2026-10-19", {"rate": "1.084200000000", "source": "ecb"}, "1.085000000000"),
    ]
    listed = _client(world["people"]["viewer"]).get("/api/v1/exchange-rates", {"from_currency": "EUR"}).json()
    assert [(row["date"], row["rate"]) for row in listed["results"]] == [
        ("2026-10-20", "1.081700000000"),
        ("2026-10-19", "1.085000000000"),
    ]


def test_only_admin_and_finance_may_load_rates(world):
    for persona in ("lead", "viewer"):
        response = _client(world["people"][persona]).post("/api/v1/exchange-rates", RATES, format="json")
        assert response.status_code == 403
    assert not AuditEvent.objects.filter(object_type="attribution.exchangerate", actor__isnull=False).exists()


def test_a_token_needs_a_write_scope_to_load_rates(world):
    _token, plaintext = api_token_create(user=world["people"]["finance"], name="ro", scopes=["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert client.get("/api/v1/exchange-rates").status_code == 200
    assert client.post("/api/v1/exchange-rates", RATES, format="json").status_code == 403


def test_it_rejects_a_bad_rate_naming_the_row_and_changes_nothing(world):
    bad = {
        "rates": [
            RATES["rates"][0],
            {"date": "2026-10-21", "from_currency": "EUR", "to_currency": "US", "rate": "0"},
        ]
    }
    response = _client(world["people"]["admin"]).post("/api/v1/exchange-rates", bad, format="json")
    assert response.status_code == 400
    [message] = response.json()["rates"]
    assert message.startswith("row 2: to currency 'US' is not an ISO 4217 code, rate '0' must be a positive")
    assert not AuditEvent.objects.filter(object_type="attribution.exchangerate", actor__isnull=False).exists()
