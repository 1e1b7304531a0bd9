"""The read-only REST API: who may see what, filters, the summary, and query counts.

Personas: `finance` (reads everything), `lead` (lead of team Search), `member` (member of team
Ads), `outsider` (no team), and anonymous callers.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from attribution.models import DailyCost, IngestRun, UnitCost
from governance.models import AuditEvent, BudgetThreshold
from routing.models import Gateway, PolicyDocument
from tests.factories import (
    BudgetFactory,
    CloudAccountFactory,
    DailyCostFactory,
    DeploymentFactory,
    MembershipFactory,
    ServedModelFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

OCT_1, OCT_2, OCT_3 = dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)


@pytest.fixture
def world():
    """Two accounts (USD on AWS, EUR on Azure), two teams, rows for each team and unallocated."""
    aws = CloudAccountFactory(slug="aws-prod", provider="aws", billing_currency="USD")
    azure = CloudAccountFactory(slug="azure-eu", provider="azure", billing_currency="EUR")
    search = TeamFactory(slug="search", name="Search")
    ads = TeamFactory(slug="ads", name="Ads")
    llama = ServedModelFactory(slug="llama-70b", name="llama-70b")
    mistral = ServedModelFactory(slug="mistral-7b", name="mistral-7b")
    llama_aws = DeploymentFactory(slug="llama-70b-aws", model=llama, account=aws)
    mistral_azure = DeploymentFactory(slug="mistral-7b-azure", model=mistral, account=azure, provider="azure")

    rows = [
        # Search on AWS, USD: 10.10 + 20.25 on two days
        DailyCostFactory(day=OCT_1, account=aws, team=search, model=llama, deployment=llama_aws,
                         billed_cost=Decimal("10.10"), effective_cost=Decimal("9.10"), line_items=4),
        DailyCostFactory(day=OCT_2, account=aws, team=search, model=llama, deployment=llama_aws,
                         billed_cost=Decimal("20.25"), effective_cost=Decimal("19.25"), line_items=5),
        # Ads on AWS in USD and on Azure in EUR
        DailyCostFactory(day=OCT_1, account=aws, team=ads, model=llama, deployment=llama_aws,
                         billed_cost=Decimal("5.01"), effective_cost=Decimal("5.01")),
        DailyCostFactory(day=OCT_3, account=azure, team=ads, model=mistral, deployment=mistral_azure,
                         provider="azure", service_name="Azure Machine Learning", region_id="westeurope",
                         billing_currency="EUR", billed_cost=Decimal("7.77"), effective_cost=Decimal("7.00")),
        # Unallocated platform cost, and tax
        DailyCostFactory(day=OCT_2, account=aws, team=None,
                         billed_cost=Decimal("3.33"), effective_cost=Decimal("3.33")),
        DailyCostFactory(day=OCT_2, account=aws, team=None, charge_category="Tax",
                         billed_cost=Decimal("0.67"), effective_cost=Decimal("0.67")),
    ]  # fmt: skip

    finance = UserFactory(username="fiona", roles=["finance"])
    admin = UserFactory(username="ada", roles=["admin"])
    lead = UserFactory(username="lena")
    MembershipFactory(user=lead, team=search, role="lead")
    member = UserFactory(username="max")
    MembershipFactory(user=member, team=ads, role="member")
    outsider = UserFactory(username="otto")
    return {
        "aws": aws,
        "azure": azure,
        "search": search,
        "ads": ads,
        "llama": llama,
        "llama_aws": llama_aws,
        "rows": rows,
        "finance": finance,
        "admin": admin,
        "lead": lead,
        "member": member,
        "outsider": outsider,
    }


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def total(rows: list[dict], field: str = "billed_cost") -> Decimal:
    return sum((Decimal(row[field]) for row in rows), Decimal("0"))


# --- Authentication and read-only -------------------------------------------------------------------

ENDPOINTS = [
    "accounts",
    "teams",
    "models",
    "deployments",
    "ingest-runs",
    "daily-costs",
    "daily-costs/summary?group_by=team",
    "me",
    "budgets",
    "audit-events",
    "gateways",
    "policy-documents",
]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_it_rejects_anonymous_callers(client, endpoint):
    assert client.get(f"/api/v1/{endpoint}").status_code == 401


# Budgets are written through the API too (tests/governance/test_budget_api.py).
@pytest.mark.parametrize("endpoint", ["accounts", "daily-costs", "gateways", "policy-documents"])
def test_it_is_read_only(world, endpoint):
    client = login(world["admin"])
    assert client.post(f"/api/v1/{endpoint}", {}, content_type="application/json").status_code == 405


# --- Shared reference data -------------------------------------------------------------------------


def test_any_authenticated_user_reads_accounts_models_and_deployments(world):
    client = login(world["outsider"])
    assert [row["slug"] for row in results(client.get("/api/v1/accounts"))] == ["aws-prod", "azure-eu"]
    assert [row["slug"] for row in results(client.get("/api/v1/models"))] == ["llama-70b", "mistral-7b"]
    deployments = results(client.get("/api/v1/deployments?model=llama-70b"))
    assert [(row["slug"], row["model"], row["account"]) for row in deployments] == [
        ("llama-70b-aws", "llama-70b", "aws-prod")
    ]


def test_accounts_never_expose_source_settings(world):
    world["aws"].source_settings = {"bucket": "billing-exports", "secret_access_key": "env:AWS_SECRET"}
    world["aws"].save()
    body = login(world["finance"]).get("/api/v1/accounts").content.decode()
    assert "source_settings" not in body and "billing-exports" not in body


# --- Teams and daily costs: scoped by membership ------------------------------------------------------


def test_teams_are_scoped_to_memberships(world):
    assert [t["slug"] for t in results(login(world["lead"]).get("/api/v1/teams"))] == ["search"]
    assert [t["slug"] for t in results(login(world["outsider"]).get("/api/v1/teams"))] == []
    assert [t["slug"] for t in results(login(world["finance"]).get("/api/v1/teams"))] == ["ads", "search"]


def test_finance_sees_every_daily_cost_row(world):
    rows = results(login(world["finance"]).get("/api/v1/daily-costs?limit=100"))
    assert len(rows) == 6
    usd = [row for row in rows if row["billing_currency"] == "USD"]
    assert total(usd) == Decimal("39.36")


def test_a_team_member_sees_only_the_rows_of_their_teams(world):
    rows = results(login(world["lead"]).get("/api/v1/daily-costs"))
    assert {row["team"] for row in rows} == {"search"}
    assert total(rows) == Decimal("30.35")
    assert total(rows, "effective_cost") == Decimal("28.35")

    ads_rows = results(login(world["member"]).get("/api/v1/daily-costs"))
    assert {(row["team"], row["billing_currency"]) for row in ads_rows} == {("ads", "USD"), ("ads", "EUR")}


def test_an_outsider_sees_no_cost_rows_and_no_unallocated_cost(world):
    assert results(login(world["outsider"]).get("/api/v1/daily-costs")) == []


def test_a_member_cannot_fetch_another_teams_row_by_id(world):
    ads_row = world["rows"][2]
    assert login(world["lead"]).get(f"/api/v1/daily-costs/{ads_row.pk}").status_code == 404
    assert login(world["member"]).get(f"/api/v1/daily-costs/{ads_row.pk}").status_code == 200


def test_daily_costs_come_with_slugs_and_decimal_strings(world):
    row = results(login(world["lead"]).get("/api/v1/daily-costs?day_to=2026-10-01"))[0]
    assert row["account"] == "aws-prod"
    assert (row["team"], row["model"], row["deployment"]) == ("search", "llama-70b", "llama-70b-aws")
    assert isinstance(row["billed_cost"], str) and Decimal(row["billed_cost"]) == Decimal("10.10")
    assert row["line_items"] == 4


@pytest.mark.parametrize(
    ("query", "expected_total"),
    [
        ("day_from=2026-10-02&day_to=2026-10-02", Decimal("24.25")),
        ("day_from=2026-10-02", Decimal("32.02")),
        ("account=azure-eu", Decimal("7.77")),
        ("provider=azure", Decimal("7.77")),
        ("provider=aws&provider=azure", Decimal("47.13")),
        ("team=search", Decimal("30.35")),
        ("unallocated=true", Decimal("4.00")),
        ("model=mistral-7b", Decimal("7.77")),
        ("deployment=llama-70b-aws", Decimal("35.36")),
        ("charge_category=Tax", Decimal("0.67")),
        ("currency=EUR", Decimal("7.77")),
        ("currency=USD&team=ads", Decimal("5.01")),
    ],
)
def test_daily_cost_filters(world, query, expected_total):
    assert total(results(login(world["finance"]).get(f"/api/v1/daily-costs?{query}"))) == expected_total


def test_filters_never_widen_what_a_member_sees(world):
    assert results(login(world["lead"]).get("/api/v1/daily-costs?team=ads")) == []
    assert results(login(world["lead"]).get("/api/v1/daily-costs?unallocated=true")) == []


def test_it_rejects_a_day_range_that_ends_before_it_starts(world):
    response = login(world["finance"]).get("/api/v1/daily-costs?day_from=2026-10-03&day_to=2026-10-01")
    assert response.status_code == 400
    assert "day_from must be on or before day_to" in response.content.decode()


def test_daily_costs_are_paginated(world):
    client = login(world["finance"])
    first = client.get("/api/v1/daily-costs?limit=4").json()
    second = client.get("/api/v1/daily-costs?limit=4&offset=4").json()
    assert first["count"] == second["count"] == 6
    assert len(first["results"]) == 4 and len(second["results"]) == 2
    assert {row["id"] for row in first["results"]}.isdisjoint(row["id"] for row in second["results"])


def test_the_daily_cost_list_does_not_grow_queries_with_rows(world, django_assert_num_queries):
    client = login(world["lead"])
    client.get("/api/v1/daily-costs")  # warm the session
    # Session, user, the user's permissions (own and groups', for row scoping), count, page.
    with django_assert_num_queries(6) as few:
        client.get("/api/v1/daily-costs")
    for day in range(4, 31):
        DailyCostFactory(day=dt.date(2026, 10, day), account=world["aws"], team=world["search"],
                         model=world["llama"], deployment=world["rows"][0].deployment)  # fmt: skip
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(results(client.get("/api/v1/daily-costs"))) == 29


# --- Summary ---------------------------------------------------------------------------------------


def summary(client: Client, query: str) -> list[dict]:
    response = client.get(f"/api/v1/daily-costs/summary?{query}")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_summary_by_team_keeps_each_currency_apart(world):
    rows = summary(login(world["finance"]), "group_by=team")
    assert [(r["key"], r["billing_currency"], r["billed_cost"]) for r in rows] == [
        ("ads", "EUR", "7.7700000000"),
        ("ads", "USD", "5.0100000000"),
        ("search", "USD", "30.3500000000"),
        (None, "USD", "4.0000000000"),  # unallocated, shown, never dropped
    ]
    assert next(r for r in rows if r["key"] == "search")["line_items"] == 9


def test_summary_totals_equal_the_rows_they_summarise(world):
    client = login(world["finance"])
    for group_by in ("provider", "team", "model", "deployment", "day"):
        rows = summary(client, f"group_by={group_by}&currency=USD")
        assert total(rows) == Decimal("39.36"), group_by
        assert total(rows, "effective_cost") == Decimal("37.36"), group_by


def test_summary_by_sku_and_the_sku_filter(world):
    search_oct_1, search_oct_2, ads_oct_1 = world["rows"][:3]
    DailyCost.objects.filter(pk__in=[search_oct_1.pk, search_oct_2.pk]).update(sku_id="ml.g5.12xlarge-hours")
    DailyCost.objects.filter(pk=ads_oct_1.pk).update(sku_id="ml.p4d.24xlarge-hours")
    client = login(world["finance"])
    rows = summary(client, "group_by=sku&currency=USD")
    assert [(r["key"], Decimal(r["billed_cost"])) for r in rows] == [
        ("ml.g5.12xlarge-hours", Decimal("30.35")),
        ("ml.p4d.24xlarge-hours", Decimal("5.01")),
        (None, Decimal("4.00")),  # no SKU: shown, never dropped
    ]
    listed = results(client.get("/api/v1/daily-costs?sku=ml.g5.12xlarge-hours"))
    assert sorted(row["day"] for row in listed) == ["2026-10-01", "2026-10-02"]
    assert {row["sku_id"] for row in listed} == {"ml.g5.12xlarge-hours"}
    # Scoped like every other read: the lead of search does not see ads' SKU.
    assert [r["key"] for r in summary(login(world["lead"]), "group_by=sku")] == ["ml.g5.12xlarge-hours"]


def test_summary_by_provider_and_day(world):
    client = login(world["finance"])
    by_provider = summary(client, "group_by=provider")
    assert [(r["key"], r["billing_currency"], Decimal(r["billed_cost"])) for r in by_provider] == [
        ("aws", "USD", Decimal("39.36")),
        ("azure", "EUR", Decimal("7.77")),
    ]
    by_day = summary(client, "group_by=day&currency=USD")
    assert [(r["key"], Decimal(r["billed_cost"])) for r in by_day] == [
        ("2026-10-01", Decimal("15.11")),
        ("2026-10-02", Decimal("24.25")),
    ]


def test_summary_is_scoped_and_filtered_like_the_list(world):
    rows = summary(login(world["lead"]), "group_by=team")
    assert [(r["key"], Decimal(r["billed_cost"])) for r in rows] == [("search", Decimal("30.35"))]
    rows = summary(login(world["member"]), "group_by=model&day_from=2026-10-02")
    assert [(r["key"], r["billing_currency"], Decimal(r["billed_cost"])) for r in rows] == [
        ("mistral-7b", "EUR", Decimal("7.77"))
    ]
    assert summary(login(world["outsider"]), "group_by=provider") == []


def test_summary_sums_are_not_multiplied_by_membership_joins(world):
    # The lead now belongs to both teams: joins through memberships must not double any amount.
    MembershipFactory(user=world["lead"], team=world["ads"])
    rows = summary(login(world["lead"]), "group_by=provider")
    assert [(r["key"], r["billing_currency"], Decimal(r["billed_cost"])) for r in rows] == [
        ("aws", "USD", Decimal("35.36")),
        ("azure", "EUR", Decimal("7.77")),
    ]


@pytest.mark.parametrize("query", ["", "group_by=region", "group_by=TEAM"])
def test_summary_rejects_an_unknown_group(world, query):
    response = login(world["finance"]).get(f"/api/v1/daily-costs/summary?{query}")
    assert response.status_code == 400
    assert "provider, team, model, deployment, sku, day" in response.json()["group_by"][0]


# --- Ingest runs -----------------------------------------------------------------------------------


def test_ingest_runs_show_state_progress_and_sums(world):
    running = IngestRun.objects.create(
        account=world["aws"],
        billing_period_start=OCT_1,
        billing_period_end=dt.date(2026, 11, 1),
        state="running",
        bytes_total=1000,
        bytes_processed=250,
        rows_processed=12_000,
    )
    IngestRun.objects.create(
        account=world["azure"],
        billing_period_start=OCT_1,
        billing_period_end=dt.date(2026, 11, 1),
        state="succeeded",
        rows_in_source=3,
        rows_loaded=3,
        source_sums={"billed_cost": "7.77"},
        database_sums={"billed_cost": "7.77"},
    )
    client = login(world["finance"])
    [row] = results(
        client.get("/api/v1/ingest-runs?state=running&account=aws-prod&billing_period=2026-10-01")
    )
    assert row["id"] == running.pk
    assert (row["state"], row["progress"], row["rows_processed"]) == ("running", 0.25, 12_000)
    [done] = results(client.get("/api/v1/ingest-runs?state=succeeded"))
    assert done["source_sums"] == done["database_sums"] == {"billed_cost": "7.77"}
    assert done["progress"] is None
    assert results(client.get("/api/v1/ingest-runs?billing_period=2026-09-01")) == []


def test_ingest_runs_with_their_account_totals_are_not_shown_to_team_roles(world):
    """A run's sums are the whole account's cost, every team's: issue 15, defect 8."""
    IngestRun.objects.create(
        account=world["aws"],
        billing_period_start=OCT_1,
        billing_period_end=dt.date(2026, 11, 1),
        state="succeeded",
        source_sums={"billed_cost": "38.69"},
        database_sums={"billed_cost": "38.69"},
    )
    for persona in ("member", "lead"):
        client = login(world[persona])
        assert results(client.get("/api/v1/ingest-runs")) == [], persona
        run_id = IngestRun.objects.get().pk
        assert client.get(f"/api/v1/ingest-runs/{run_id}").status_code == 404, persona
    assert len(results(login(world["finance"]).get("/api/v1/ingest-runs"))) == 1


def test_unit_costs_show_rates_to_everyone_and_deployment_spend_to_finance_only(world):
    """Rates per 1M tokens are prices; a deployment's daily cost is every team's spend (defect 8)."""
    UnitCost.objects.create(
        day=OCT_1,
        model=world["llama"],
        deployment=world["llama_aws"],
        provider="aws",
        currency="USD",
        effective_cost=Decimal("1234.5678"),
        input_tokens=2_000_000,
        cost_per_1m_input_tokens=Decimal("617.2839"),
    )
    [for_member] = results(login(world["member"]).get("/api/v1/unit-costs"))
    assert for_member["effective_cost"] is None
    assert for_member["cost_per_1m_input_tokens"] == "617.2839000000"
    assert "1234.5678" not in login(world["lead"]).get("/api/v1/unit-costs").content.decode()
    [for_finance] = results(login(world["finance"]).get("/api/v1/unit-costs"))
    assert for_finance["effective_cost"] == "1234.5678000000"


# --- Governance endpoints --------------------------------------------------------------------------


def test_me_lists_roles_and_team_memberships(world):
    MembershipFactory(user=world["lead"], team=world["ads"], role="member")
    world["lead"].groups.create(name="team_lead")
    body = login(world["lead"]).get("/api/v1/me").json()
    assert body == {
        "username": "lena",
        "is_superuser": False,
        "roles": ["team_lead"],
        "teams": [
            {"slug": "ads", "name": "Ads", "role": "member"},
            {"slug": "search", "name": "Search", "role": "lead"},
        ],
    }


def test_budgets_are_scoped_to_the_callers_teams(world):
    search_budget = BudgetFactory(name="Search monthly", team=world["search"], amount=Decimal("5000.00"))
    BudgetThreshold.objects.create(budget=search_budget, percent=Decimal("80"), basis="actual")
    BudgetFactory(name="Ads monthly", team=world["ads"])
    BudgetFactory(name="Organisation", team=None)

    [budget] = results(login(world["lead"]).get("/api/v1/budgets"))
    assert (budget["name"], budget["team"], Decimal(budget["amount"])) == (
        "Search monthly",
        "search",
        Decimal("5000"),
    )
    assert [(row["percent"], row["basis"]) for row in budget["thresholds"]] == [("80.00", "actual")]
    assert results(login(world["outsider"]).get("/api/v1/budgets")) == []
    names = [b["name"] for b in results(login(world["finance"]).get("/api/v1/budgets"))]
    assert names == ["Ads monthly", "Organisation", "Search monthly"]


@pytest.mark.parametrize("persona", ["finance", "admin"])
def test_admin_and_finance_read_the_audit_log(world, persona):
    AuditEvent.objects.create(
        actor_label="lena", action="update", object_type="governance.budget", object_id="1"
    )
    [event] = results(login(world[persona]).get("/api/v1/audit-events?object_type=governance.budget"))
    assert (event["actor_label"], event["action"]) == ("lena", "update")


@pytest.mark.parametrize("persona", ["lead", "member", "outsider"])
def test_other_roles_cannot_read_the_audit_log(world, persona):
    assert login(world[persona]).get("/api/v1/audit-events").status_code == 403


# --- Routing endpoints -----------------------------------------------------------------------------


def test_gateways_never_expose_their_token_hash(world):
    gateway = Gateway.objects.create(
        name="HAProxy EU", slug="haproxy-eu", kind="haproxy", token_prefix="a1b2c3d4", token_hash="f" * 64
    )
    gateway.served_models.add(world["llama"])
    response = login(world["outsider"]).get("/api/v1/gateways")
    [row] = results(response)
    assert (row["slug"], row["served_models"], row["token_prefix"]) == (
        "haproxy-eu",
        ["llama-70b"],
        "a1b2c3d4",
    )
    assert "f" * 64 not in response.content.decode() and "token_hash" not in row


def test_policy_documents_are_listed_newest_first_per_gateway(world):
    eu = Gateway.objects.create(name="EU", slug="eu", kind="envoy")
    us = Gateway.objects.create(name="US", slug="us", kind="traefik")
    for version in (1, 2):
        PolicyDocument.objects.create(
            gateway=eu, version=version, content={"v": version}, content_hash=f"h{version}"
        )
    PolicyDocument.objects.create(gateway=us, version=1, content={}, content_hash="u1")
    rows = results(login(world["member"]).get("/api/v1/policy-documents?gateway=eu"))
    assert [(row["gateway"], row["version"], row["content"]) for row in rows] == [
        ("eu", 2, {"v": 2}),
        ("eu", 1, {"v": 1}),
    ]
