from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Q, Sum

from attribution.allocation import selectors
from attribution.allocation.services import allocation_conservation_check, allocation_run
from attribution.costs.services import unit_costs_rebuild
from attribution.models import AllocatedCost, AllocationRule, CloudAccount, Deployment, PriceCard, UnitCost
from tests.attribution.allocation.conftest import DAY
from tests.factories import MembershipFactory, UserFactory

D = Decimal


@pytest.fixture
def demo(db, tmp_path):
    """Three demo days ingested through the real pipeline, gateway usage loaded, one rule per pool."""
    call_command("demo_seed")
    call_command("demo_exports", days=3, out=str(tmp_path), seed=42, end_date="2026-11-03")
    call_command("ingest_exports", str(tmp_path))
    call_command("load_demo_usage", dir=str(tmp_path / "usage"))
    methods = ["tokens", "requests", "gpu_seconds", "even"]
    pools = Deployment.objects.filter(
        Q(slug__contains="-eks-") | Q(slug__contains="-gke-") | Q(slug__contains="-aks-")
    )
    for index, deployment in enumerate(pools.order_by("slug")):
        AllocationRule.objects.create(
            name=f"pool {deployment.slug}",
            match_deployment=deployment,
            method=methods[index % len(methods)],
            idle_policy="own_line" if index % 2 else "spread",
        )
    return [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in range(3)]


def test_conservation_holds_on_the_demo_data(demo):
    results = [allocation_run(account_id=account.pk) for account in CloudAccount.objects.all()]
    assert all(result.conserved for result in results)
    assert sum(result.pools for result in results) > 0
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT "x_Account", ("ChargePeriodStart" AT TIME ZONE 'UTC')::date, "BillingCurrency",
                      SUM("BilledCost"), SUM("EffectiveCost")
               FROM focus_line_items GROUP BY 1, 2, 3"""
        )
        billed = {tuple(row[:3]): tuple(row[3:]) for row in cursor.fetchall()}
        cursor.execute(
            """SELECT "x_Account", "ChargePeriodStart", "BillingCurrency", SUM("BilledCost"),
                      SUM("EffectiveCost")
               FROM focus_allocated_costs GROUP BY 1, 2, 3"""
        )
        allocated = {tuple(row[:3]): tuple(row[3:]) for row in cursor.fetchall()}
    assert billed and allocated == billed
    for account in CloudAccount.objects.all():
        assert allocation_conservation_check(account_id=account.pk, days=demo, source="line_items") == []
    # Shared pools reached several teams, and platform cost stayed visible as unallocated.
    pool_teams = (
        AllocatedCost.objects.filter(rule__isnull=False, team__isnull=False).values("team").distinct()
    )
    assert pool_teams.count() >= 5
    reasons = set(
        AllocatedCost.objects.exclude(unallocated_reason="").values_list("unallocated_reason", flat=True)
    )
    assert "untagged" in reasons


def test_selectors_show_team_shares_to_members_and_everything_to_finance(demo):
    for account in CloudAccount.objects.all():
        allocation_run(account_id=account.pk)
    start, end = demo[0], demo[-1]
    finance = UserFactory(roles=["finance"])
    member = MembershipFactory(team__slug="search").user
    outsider = UserFactory()

    everything = selectors.spend_by_team(user=finance, start=start, end=end)
    search = [row for row in everything if row["team"] == "search"]
    assert search and search[0]["shared_effective_cost"] > 0 and search[0]["direct_effective_cost"] > 0
    assert selectors.spend_by_team(user=member, start=start, end=end) == search
    assert selectors.spend_by_team(user=outsider, start=start, end=end) == []

    unallocated = selectors.unallocated_by_reason(user=finance, start=start, end=end)
    expected = AllocatedCost.objects.exclude(unallocated_reason="").aggregate(total=Sum("billed_cost"))[
        "total"
    ]
    assert sum(row["billed_cost"] for row in unallocated) == expected
    # Unallocated rows belong to no team: a team member does not see them.
    assert selectors.unallocated_by_reason(user=member, start=start, end=end) == []
    models = selectors.spend_by_model(user=finance, start=start, end=end)
    assert (
        sum(row["effective_cost"] for row in models)
        == AllocatedCost.objects.filter(unallocated_reason="", model__isnull=False).aggregate(
            total=Sum("effective_cost")
        )["total"]
    )


def test_unit_costs_split_one_cost_over_input_and_output_tokens(world):
    world.line_item("100.00", "60.00", team="search", deployment=world.pool)
    world.usage("search", requests=4000, input_tokens=3_000_000, output_tokens=1_000_000)
    world.usage("ads", requests=1000, input_tokens=1_000_000, output_tokens=0, hour=1)
    world.allocate()
    assert unit_costs_rebuild(days=[DAY]) == 1
    unit = UnitCost.objects.get(day=DAY, deployment=world.pool)
    # Effective basis, 1:1 by default: 60 / 5M tokens.
    assert (unit.effective_cost, unit.requests, unit.input_tokens, unit.output_tokens) == (
        D("60.00"), 5000, 4_000_000, 1_000_000
    )  # fmt: skip
    assert unit.cost_per_1m_input_tokens == D("12")
    assert unit.cost_per_1m_output_tokens == D("12")
    assert unit.cost_per_1k_requests == D("12")

    # With the price card's 4:1 output:input ratio: p * (4M + 4 * 1M) = 60 -> p = 7.5 per 1M.
    PriceCard.objects.create(deployment=world.pool, unit="1m_input_tokens", price=D("2.5"), valid_from=DAY)
    PriceCard.objects.create(deployment=world.pool, unit="1m_output_tokens", price=D("10"), valid_from=DAY)
    unit_costs_rebuild(days=[DAY])
    unit = UnitCost.objects.get(day=DAY, deployment=world.pool)
    assert (unit.cost_per_1m_input_tokens, unit.cost_per_1m_output_tokens) == (D("7.5"), D("30"))
    assert unit.cost_per_1m_input_tokens * 4 + unit.cost_per_1m_output_tokens * 1 == unit.effective_cost

    unit_costs_rebuild(days=[DAY], output_input_ratio=D("1"))
    assert UnitCost.objects.get(day=DAY, deployment=world.pool).cost_per_1m_output_tokens == D("12")


def test_unit_costs_include_shared_pool_shares_and_idle(world):
    AllocationRule.objects.create(name="pool", match_deployment=world.pool, method="gpu_seconds")
    world.line_item("86.40", deployment=world.pool)
    world.usage("search", gpu_seconds="86400.000", requests=10, input_tokens=1000)
    world.allocate()
    assert set(AllocatedCost.objects.values_list("unallocated_reason", flat=True)) == {"", "idle"}
    unit_costs_rebuild(days=[DAY])
    unit = UnitCost.objects.get(day=DAY, deployment=world.pool)
    # The whole cost of the deployment, idle half included, over the usage it served.
    assert unit.effective_cost == D("86.40")
    assert unit.cost_per_1k_requests == D("8640")
    assert selectors.unit_costs(user=UserFactory(), start=DAY, end=DAY).get() == unit


# --- Defect 2 of issue 10: token and request counts come from usage, never from an always-0 column ----


def test_token_and_request_counts_are_published_from_usage_not_as_zeros_in_daily_costs(demo, client):
    from collections import defaultdict

    from attribution.models import UsageRecord

    for account in CloudAccount.objects.all():
        allocation_run(account_id=account.pk)
    unit_costs_rebuild(days=demo)
    client.force_login(UserFactory(roles=["finance"]))

    # Daily costs are billed cells (service x region x charge category ...): usage has none of those
    # dimensions, so they publish no token or request counts at all rather than zeros.
    daily = client.get("/api/v1/daily-costs?limit=1000").json()["results"]
    assert daily
    published = {key for row in daily for key in row} & {"input_tokens", "output_tokens", "requests"}
    assert published == set()
    summary = client.get("/api/v1/daily-costs/summary?group_by=deployment").json()["results"]
    assert summary and not {key for row in summary for key in row} & {
        "input_tokens",
        "output_tokens",
        "requests",
    }

    # Unit costs carry the real usage of each day x deployment x model, and are computed from it.
    usage: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for record in UsageRecord.objects.filter(bucket_start__date__in=demo):
        key = (record.bucket_start.date().isoformat(), record.deployment.slug, record.model.slug)
        usage[key][0] += record.requests
        usage[key][1] += record.input_tokens
        usage[key][2] += record.output_tokens
    unit_rows = client.get("/api/v1/unit-costs?limit=1000").json()["results"]
    with_usage = [row for row in unit_rows if row["requests"]]
    assert len(with_usage) >= 10
    for row in unit_rows:
        assert [row["requests"], row["input_tokens"], row["output_tokens"]] == usage.get(
            (row["day"], row["deployment"], row["model"]), [0, 0, 0]
        ), row
    for row in with_usage:
        cost, requests = D(row["effective_cost"]), row["requests"]
        assert D(row["cost_per_1k_requests"]) == (cost * 1000 / requests).quantize(D("1e-10"))


# --- Defect 3 of issue 10: the demo prices input and output tokens apart, and the page says how ------


def test_demo_unit_costs_split_by_realistic_price_cards_and_the_overview_names_the_basis(demo, client):
    from django.urls import reverse

    for account in CloudAccount.objects.all():
        allocation_run(account_id=account.pk)
    unit_costs_rebuild(days=demo)
    both = UnitCost.objects.filter(input_tokens__gt=0, output_tokens__gt=0).select_related("deployment")
    assert both.count() >= 10
    for unit in both:
        cards = {card.unit: card.price for card in PriceCard.objects.filter(deployment=unit.deployment)}
        input_price, output_price = cards["1m_input_tokens"], cards["1m_output_tokens"]
        assert input_price < output_price, unit.deployment.slug  # as every provider prices them
        assert unit.ratio_source == "price_card"
        assert unit.output_input_ratio == (output_price / input_price).quantize(D("1e-12"))
        assert unit.cost_per_1m_input_tokens < unit.cost_per_1m_output_tokens
        # Still one cost, split: input price x input tokens + output price x output tokens = cost.
        split = (
            unit.cost_per_1m_input_tokens * unit.input_tokens
            + unit.cost_per_1m_output_tokens * unit.output_tokens
        ) / 1_000_000
        assert abs(split - unit.effective_cost) < D("0.01")
    # Whisper is priced per audio minute: no token cards, and its rows say they used the default.
    whisper = UnitCost.objects.filter(deployment__slug__contains="whisper")
    assert whisper and {unit.ratio_source for unit in whisper} == {"setting"}

    client.force_login(UserFactory(roles=["finance"]))
    html = client.get(reverse("attribution:overview")).content.decode()
    assert "Split basis" in html
    assert "· price cards" in html and "· default ratio (no price cards)" in html
