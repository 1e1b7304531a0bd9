"""Property: whatever the line items (10-decimal amounts, credits, several currencies and charge
categories, teams, pools with and without rules) and usage, allocated + unallocated == billed
exactly, per (day, account, currency) and per charge category, for BilledCost and EffectiveCost."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from attribution.allocation.services import allocation_conservation_check
from attribution.models import AllocatedCost, AllocationRule, AllocationShare, CostLineItem, Deployment
from tests.attribution.allocation.conftest import DAY, World

DAYS = [DAY, DAY + dt.timedelta(days=1)]
amounts = st.decimals(
    min_value=Decimal("-500"), max_value=Decimal("5000"), places=10, allow_nan=False, allow_infinity=False
)
line_items = st.lists(
    st.fixed_dictionaries(
        {
            "billed": amounts,
            "effective": amounts,
            "day": st.sampled_from(DAYS),
            "team": st.sampled_from([None, None, "search", "ads"]),
            "pool": st.sampled_from([None, "gpu-a", "gpu-b", "gpu-c", "gpu-x"]),
            "category": st.sampled_from(["Usage", "Usage", "Credit", "Tax"]),
            "currency": st.sampled_from(["USD", "USD", "EUR"]),
        }
    ),
    min_size=1,
    max_size=25,
)
usage = st.lists(
    st.fixed_dictionaries(
        {
            "pool": st.sampled_from(["gpu-a", "gpu-b", "gpu-c"]),
            "team": st.sampled_from([None, "search", "ads", "bots"]),
            "day": st.sampled_from(DAYS),
            "hour": st.integers(0, 23),
            "requests": st.integers(0, 10**6),
            "input_tokens": st.integers(0, 10**9),
            "output_tokens": st.integers(0, 10**9),
            "gpu_seconds": st.decimals(min_value=0, max_value=200000, places=3),
        }
    ),
    max_size=15,
    unique_by=lambda u: (u["pool"], u["team"], u["day"], u["hour"]),
)


class ConservationProperty(TestCase):
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        items=line_items,
        usage_rows=usage,
        methods=st.tuples(
            st.sampled_from(["tokens", "requests", "gpu_seconds", "even", "fixed"]),
            st.sampled_from(["tokens", "requests", "gpu_seconds", "even"]),
            st.sampled_from(["own_line", "spread"]),
        ),
    )
    def test_allocated_plus_unallocated_equals_billed_exactly(self, items, usage_rows, methods):
        world = World()
        pools = {
            name: Deployment.objects.create(
                slug=f"dep-{name}", model=world.pool.model, provider="aws", region="r",
                pricing_mode="reserved", gpu_count=1,
            )
            for name in ("gpu-a", "gpu-b", "gpu-c")
        }  # fmt: skip
        rule_a = AllocationRule.objects.create(
            name="a", match_tag_key="pool", match_tag_value="gpu-a", method=methods[0], idle_policy=methods[2]
        )
        if methods[0] == "fixed":
            AllocationShare.objects.create(
                rule=rule_a, team=world.teams["search"], percent=Decimal("33.3333")
            )
            AllocationShare.objects.create(rule=rule_a, team=world.teams["ads"], percent=Decimal("66.6667"))
        AllocationRule.objects.create(name="b", match_deployment=pools["gpu-b"], method=methods[1])
        # gpu-c has a deployment but no rule (no_rule); gpu-x a pool tag without a deployment.
        for item in items:
            deployment = pools.get(item["pool"])
            world.line_item(
                item["billed"],
                item["effective"],
                day=item["day"],
                team=item["team"],
                deployment=deployment,
                tags={"pool": item["pool"]} if item["pool"] else {},
                category=item["category"],
                currency=item["currency"],
            )
        for row in usage_rows:
            world.usage(
                row["team"],
                deployment=pools[row["pool"]],
                day=row["day"],
                hour=row["hour"],
                requests=row["requests"],
                input_tokens=row["input_tokens"],
                output_tokens=row["output_tokens"],
                gpu_seconds=str(row["gpu_seconds"]),
            )

        result = world.allocate(days=DAYS)

        assert result.conserved, result.violations
        assert (
            allocation_conservation_check(account_id=world.account.pk, days=DAYS, source="line_items") == []
        )
        key = ("charge_period_start__date", "billing_currency", "charge_category")
        billed = {
            (row["charge_period_start__date"], row["billing_currency"], row["charge_category"]): (
                row["b"],
                row["e"],
            )
            for row in CostLineItem.objects.values(*key).annotate(
                b=Sum("billed_cost"), e=Sum("effective_cost")
            )
        }
        allocated = {
            (row["day"], row["billing_currency"], row["charge_category"]): (row["b"], row["e"])
            for row in AllocatedCost.objects.values("day", "billing_currency", "charge_category").annotate(
                b=Sum("billed_cost"), e=Sum("effective_cost")
            )
        }
        assert allocated == billed
        # Every row is either allocated to a team or says why not.
        assert not AllocatedCost.objects.filter(team__isnull=True, unallocated_reason="").exists()
