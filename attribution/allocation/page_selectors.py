"""Reads of the Allocation rules page: the rules with their shares, and what each rule moved recently
(its preview against real data), from AllocatedCost restricted to what the user may see."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.db.models import Sum

from attribution.models import AllocatedCost, AllocationRule

EFFECT_DAYS = 30


def allocation_rules_with_effect(*, user, today: dt.date) -> tuple[list[dict], dt.date]:
    """[{rule, shares, effect: [(team or model label, currency, billed)], total: {currency: billed}}].

    Three queries whatever the number of rules: rules, their shares (prefetched), and one grouped
    sum over the last EFFECT_DAYS of allocated rows. A team role's sums cover only its own teams'
    rows (AllocatedCost.restrict), so no other team's figure reaches the page."""
    since = today - dt.timedelta(days=EFFECT_DAYS)
    rules = list(
        AllocationRule.objects.select_related("account", "match_deployment")
        .prefetch_related("shares__team", "shares__model")
        .order_by("priority", "id")
    )
    sums = (
        AllocatedCost.objects.restrict(user)
        .filter(day__gte=since, rule__isnull=False, unallocated_reason="")
        .values("rule_id", "team__name", "model__name", "billing_currency")
        .annotate(billed=Sum("billed_cost"))
        .order_by("rule_id", "-billed")
    )
    effect: dict[int, list[tuple[str, str, Decimal]]] = defaultdict(list)
    totals: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in sums:
        label = row["team__name"] or row["model__name"] or "idle (own line)"
        effect[row["rule_id"]].append((label, row["billing_currency"], row["billed"]))
        totals[row["rule_id"]][row["billing_currency"]] += row["billed"]
    return [
        {
            "rule": rule,
            "shares": list(rule.shares.all()),
            "effect": effect.get(rule.pk, []),
            "totals": sorted(totals.get(rule.pk, {}).items()),
        }
        for rule in rules
    ], since
