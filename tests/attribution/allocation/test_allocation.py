from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from attribution.allocation.services import AllocationRuleError, allocation_conservation_check
from attribution.models import AllocatedCost, AllocationRule, AllocationShare
from governance.models import Alert
from tests.attribution.allocation.conftest import DAY
from tests.factories import DeploymentFactory

D = Decimal


def _rows(world, **filters) -> dict:
    """{(team slug | reason): (billed, effective)} of the day's allocated rows."""
    rows = {}
    for row in AllocatedCost.objects.filter(account=world.account, day=DAY, **filters).select_related("team"):
        key = row.team.slug if row.team else row.unallocated_reason
        billed, effective = rows.get(key, (D(0), D(0)))
        rows[key] = (billed + row.billed_cost, effective + row.effective_cost)
    return rows


def _pool_rule(world, method: str, idle_policy: str = "own_line") -> AllocationRule:
    return AllocationRule.objects.create(
        name=f"gpu-a {method}",
        match_tag_key="pool",
        match_tag_value="gpu-a",
        method=method,
        idle_policy=idle_policy,
    )


def _pool_cost(world, billed: str, effective: str | None = None) -> None:
    world.line_item(
        billed, effective, deployment=world.pool, tags={"pool": "GPU-A", "deployment": "pool-dep"}
    )


def test_it_allocates_tagged_cost_directly(world):
    world.line_item("12.3400000001", "10.00", team="search")
    world.line_item("0.66", team="search")
    result = world.allocate()
    assert result.conserved
    row = AllocatedCost.objects.get(account=world.account, day=DAY)
    assert (row.team.slug, row.billed_cost, row.effective_cost) == ("search", D("13.0000000001"), D("10.66"))
    assert row.allocated_method_id == "direct"
    assert row.allocation_ratio == 1
    assert row.unallocated_reason == ""


def test_it_splits_a_pool_by_tokens_to_the_tenth_decimal(world):
    rule = _pool_rule(world, "tokens")
    _pool_cost(world, "100.00", "70.00")
    world.usage("search", input_tokens=600, output_tokens=400)
    world.usage("ads", input_tokens=1500, output_tokens=500)
    world.usage("bots", input_tokens=3000)
    result = world.allocate()
    assert result.conserved and result.pools == 1
    assert _rows(world) == {
        "search": (D("16.6666666667"), D("11.6666666667")),
        "ads": (D("33.3333333333"), D("23.3333333333")),
        "bots": (D("50.0000000000"), D("35.0000000000")),
    }
    search = AllocatedCost.objects.get(day=DAY, team__slug="search")
    assert search.allocated_method_id == "tokens"
    assert search.rule == rule
    assert search.deployment == world.pool
    assert search.allocation_ratio == D("0.166666666667")
    assert search.allocated_method_details == {
        "ratio": "0.166666666667",
        "basis": "tokens",
        "basis_quantity": "1000",
        "basis_total": "6000",
        "rule_id": rule.pk,
        "rule": rule.name,
        "idle_policy": "own_line",
    }


def test_it_splits_credits_exactly_too(world):
    _pool_rule(world, "tokens")
    _pool_cost(world, "-10")
    world.usage("search", input_tokens=1)
    world.usage("ads", input_tokens=2)
    world.allocate()
    assert _rows(world) == {
        "search": (D("-3.3333333333"), D("-3.3333333333")),
        "ads": (D("-6.6666666667"), D("-6.6666666667")),
    }


def test_it_splits_by_requests_and_gives_the_odd_cent_to_one_team(world):
    _pool_rule(world, "requests")
    _pool_cost(world, "10.00")
    for team in ("search", "ads", "bots"):
        world.usage(team, requests=7, input_tokens=10**6 if team == "bots" else 0)
    world.allocate()
    rows = _rows(world)
    assert sorted(billed for billed, _ in rows.values()) == [
        D("3.3333333333"),
        D("3.3333333333"),
        D("3.3333333334"),
    ]
    assert sum(billed for billed, _ in rows.values()) == D("10.00")


def test_gpu_seconds_own_line_shows_unused_capacity_as_idle(world):
    _pool_rule(world, "gpu_seconds", "own_line")
    _pool_cost(world, "100.00")
    # 2 GPUs = 172,800 GPU-seconds a day; 86,400 used.
    world.usage("search", gpu_seconds="43200.000", requests=5)
    world.usage("ads", gpu_seconds="43200.000", requests=5)
    world.allocate()
    assert _rows(world) == {
        "search": (D("25.0000000000"), D("25.0000000000")),
        "ads": (D("25.0000000000"), D("25.0000000000")),
        "idle": (D("50.0000000000"), D("50.0000000000")),
    }
    idle = AllocatedCost.objects.get(day=DAY, unallocated_reason="idle")
    assert idle.allocated_method_details["capacity_gpu_seconds"] == "172800"
    assert idle.allocated_method_details["basis_quantity"] == "86400"


def test_gpu_seconds_spread_shares_idle_capacity_among_users(world):
    _pool_rule(world, "gpu_seconds", "spread")
    _pool_cost(world, "100.00")
    world.usage("search", gpu_seconds="10000.000")
    world.usage("ads", gpu_seconds="30000.000")
    world.allocate()
    assert _rows(world) == {"search": (D("25"), D("25")), "ads": (D("75"), D("75"))}


def test_even_splits_over_the_teams_that_used_the_pool(world):
    _pool_rule(world, "even")
    _pool_cost(world, "100.00")
    world.usage("search", requests=1, hour=1)
    world.usage("search", requests=900, hour=2)
    world.usage("ads", requests=3)
    world.usage("bots", requests=0, input_tokens=5)
    world.allocate()
    rows = _rows(world)
    assert set(rows) == {"search", "ads", "bots"}
    assert sorted(b for b, _ in rows.values()) == [D("33.3333333333"), D("33.3333333333"), D("33.3333333334")]


def test_fixed_shares_split_without_usage(world):
    rule = _pool_rule(world, "fixed")
    AllocationShare.objects.create(rule=rule, team=world.teams["search"], percent=D("62.5"))
    AllocationShare.objects.create(rule=rule, team=world.teams["ads"], percent=D("37.5"))
    _pool_cost(world, "80.00", "40.00")
    world.allocate()
    assert _rows(world) == {"search": (D("50"), D("25")), "ads": (D("30"), D("15"))}


def test_it_rejects_fixed_shares_that_do_not_total_100_percent(world):
    rule = _pool_rule(world, "fixed")
    AllocationShare.objects.create(rule=rule, team=world.teams["search"], percent=D("60"))
    AllocationShare.objects.create(rule=rule, team=world.teams["ads"], percent=D("30"))
    _pool_cost(world, "80.00")
    with pytest.raises(AllocationRuleError, match="must total exactly 100%; its 2 shares total 90"):
        world.allocate()
    assert not AllocatedCost.objects.exists()


@pytest.mark.parametrize(("idle_policy", "reason"), [("own_line", "idle"), ("spread", "no_usage")])
def test_a_pool_nobody_used_that_day_stays_unallocated(world, idle_policy, reason):
    _pool_rule(world, "tokens", idle_policy)
    _pool_cost(world, "42.00")
    world.usage("search", input_tokens=1000, day=DAY - dt.timedelta(days=1))
    result = world.allocate()
    assert result.conserved
    assert _rows(world) == {reason: (D("42.00"), D("42.00"))}
    row = AllocatedCost.objects.get(day=DAY)
    assert row.team is None and row.deployment == world.pool


def test_untagged_and_ruleless_cost_is_unallocated_by_reason(world):
    other = DeploymentFactory(slug="other-dep", account=world.account)
    world.line_item("5.00")  # no tag at all
    world.line_item("7.00", deployment=other)  # a deployment, but no active rule covers it
    world.line_item("11.00", tags={"pool": "gpu-b"})  # a pool tag no rule matches
    AllocationRule.objects.create(name="inactive", match_deployment=other, method="even", is_active=False)
    world.allocate()
    assert _rows(world) == {"untagged": (D("5.00"), D("5.00")), "no_rule": (D("18.00"), D("18.00"))}
    assert set(AllocatedCost.objects.values_list("allocated_method_id", flat=True)) == {"unallocated"}


def test_rules_match_by_deployment_and_by_priority(world):
    low = AllocationRule.objects.create(
        name="by tag", match_tag_key="pool", match_tag_value="gpu-a", method="even"
    )
    high = AllocationRule.objects.create(
        name="by deployment", match_deployment=world.pool, method="requests", priority=1
    )
    _pool_cost(world, "9.00")
    world.usage("search", requests=2)
    world.usage("ads", requests=1)
    world.allocate()
    assert _rows(world) == {"search": (D("6"), D("6")), "ads": (D("3"), D("3"))}
    assert set(AllocatedCost.objects.values_list("rule", flat=True)) == {high.pk}
    assert low.pk != high.pk


def test_rerunning_a_day_replaces_only_that_day(world):
    world.line_item("1.00", team="search")
    world.line_item("2.00", team="ads", day=DAY + dt.timedelta(days=1))
    world.allocate(days=[DAY, DAY + dt.timedelta(days=1)])
    world.line_item("0.50", team="search")  # a late bill for DAY
    result = world.allocate(days=[DAY])
    assert result.conserved
    totals = dict(
        AllocatedCost.objects.values_list("day")
        .annotate(total=Sum("billed_cost"))
        .values_list("day", "total")
    )
    assert totals == {DAY: D("1.50"), DAY + dt.timedelta(days=1): D("2.00")}
    assert AllocatedCost.objects.count() == 2


def test_usage_rollup_is_read_when_it_exists(world):
    from attribution.models import UsageDaily

    _pool_rule(world, "tokens")
    _pool_cost(world, "30.00")
    world.usage("search", input_tokens=1)  # raw buckets would say search only...
    UsageDaily.objects.create(
        day=DAY, deployment=world.pool, team=world.teams["ads"], model=world.pool.model, input_tokens=2
    )
    UsageDaily.objects.create(
        day=DAY, deployment=world.pool, team=world.teams["bots"], model=world.pool.model, input_tokens=1
    )
    world.allocate()
    assert _rows(world) == {"ads": (D("20"), D("20")), "bots": (D("10"), D("10"))}


def test_a_conservation_violation_raises_a_governance_alert(world):
    world.line_item("10.00", team="search")
    assert world.allocate().conserved
    AllocatedCost.objects.create(
        day=DAY, account=world.account, billing_period_start=DAY.replace(day=1), provider="aws",
        charge_category="Usage", billing_currency="USD", billed_cost=D("0.01"), effective_cost=D("0"),
        allocated_method_id="direct",
    )  # fmt: skip
    violations = allocation_conservation_check(account_id=world.account.pk, days=[DAY])
    assert [(v.column, v.billed, v.allocated) for v in violations] == [("BilledCost", D("10.00"), D("10.01"))]
    alert = Alert.objects.get(kind="conservation")
    assert alert.severity == "critical"
    assert "billed 10.00" in alert.message and "10.01" in alert.message


def test_the_focus_view_names_the_allocation(world):
    _pool_rule(world, "tokens")
    _pool_cost(world, "10.00")
    world.usage("search", input_tokens=1)
    world.line_item("1.00")
    world.allocate()
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT "x_Team", "x_Deployment", "AllocatedMethodId", "x_UnallocatedReason", "BilledCost",
                      "x_AllocationRatio", "AllocatedMethodDetails"->>'basis', "ChargePeriodStart"
               FROM focus_allocated_costs ORDER BY "BilledCost" """
        )
        assert cursor.fetchall() == [
            (None, None, "unallocated", "untagged", D("1.00"), None, None, DAY),
            ("search", "pool-dep", "tokens", None, D("10.00"), D("1"), "tokens", DAY),
        ]


# --- Defect 5 of issue 10: fixed shares that do not total 100 % are refused where they are entered ----


def test_the_service_refuses_fixed_shares_that_do_not_total_100_and_writes_nothing(world):
    from django.core.exceptions import ValidationError

    from attribution.allocation.services import allocation_rule_create, allocation_rule_shares_set

    rule_data = {
        "name": "gpu-a fixed",
        "match_tag_key": "pool",
        "match_tag_value": "gpu-a",
        "method": "fixed",
    }
    short = [
        {"team_id": world.teams["search"].pk, "percent": D("60")},
        {"team_id": world.teams["ads"].pk, "percent": D("30")},
    ]
    with pytest.raises(AllocationRuleError, match="must total exactly 100%; its 2 shares total 90%"):
        allocation_rule_create(rule_data=rule_data, shares=short)
    assert not AllocationRule.objects.exists()
    assert not AllocationShare.objects.exists()
    with pytest.raises(AllocationRuleError, match="total 110%"):
        allocation_rule_create(
            rule_data=rule_data, shares=[*short, {"team_id": world.teams["ads"].pk, "percent": 20}]
        )
    assert not AllocationRule.objects.exists()

    whole = [short[0], {"team_id": world.teams["ads"].pk, "percent": D("40")}]
    rule = allocation_rule_create(rule_data=rule_data, shares=whole)
    # Replacing the shares with a short set is refused and leaves the saved ones as they were.
    with pytest.raises(AllocationRuleError):
        allocation_rule_shares_set(rule=rule, shares=short)
    assert sorted(rule.shares.values_list("percent", flat=True)) == [D("40"), D("60")]
    with pytest.raises(ValidationError):  # a share must still be in (0, 100]
        allocation_rule_shares_set(
            rule=rule,
            shares=[
                {"team_id": world.teams["search"].pk, "percent": D("150")},
                {"team_id": world.teams["ads"].pk, "percent": D("-50")},
            ],
        )
    assert rule.shares.count() == 2
    # Other methods take no shares into account: nothing to total.
    allocation_rule_create(rule_data={**rule_data, "name": "by tokens", "method": "tokens"}, shares=[])
    _pool_cost(world, "80.00", "40.00")
    world.allocate()
    assert _rows(world) == {"search": (D("48"), D("24")), "ads": (D("32"), D("16"))}
