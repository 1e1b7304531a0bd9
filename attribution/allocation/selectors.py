"""Reads over allocation results, restricted to what the user may see.

AllocatedCost is scoped by team (`.restrict(user)`): admin/finance see everything, including the
unallocated rows (which have no team); team members see their teams' rows, shared-pool shares
included. Unit costs are per deployment, not per team: any signed-in user may read them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Case, DecimalField, F, Q, QuerySet, Sum, Value, When

from attribution.models import AllocatedCost, UnitCost

_MONEY = DecimalField(max_digits=24, decimal_places=10)


def allocated_costs(*, user, start: dt.date, end: dt.date, account_id: int | None = None) -> QuerySet:
    """AllocatedCost rows the user may see with start <= day <= end."""
    rows = AllocatedCost.objects.restrict(user).filter(day__gte=start, day__lte=end)
    if account_id is not None:
        rows = rows.filter(account_id=account_id)
    return rows


def unallocated_by_reason(
    *, user, start: dt.date, end: dt.date, account_id: int | None = None
) -> list[dict[str, Any]]:
    """[{reason, billing_currency, billed_cost, effective_cost}] of the unallocated rows."""
    rows = (
        allocated_costs(user=user, start=start, end=end, account_id=account_id)
        .exclude(unallocated_reason="")
        .values("unallocated_reason", "billing_currency")
        .annotate(total_billed=Sum("billed_cost"), total_effective=Sum("effective_cost"))
        .order_by("unallocated_reason", "billing_currency")
    )
    return [
        {
            "reason": row["unallocated_reason"],
            "billing_currency": row["billing_currency"],
            "billed_cost": row["total_billed"],
            "effective_cost": row["total_effective"],
        }
        for row in rows
    ]


def _spend_by(dimension: str, *, user, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    shared = Q(unallocated_reason="") & ~Q(allocated_method_id="direct")
    rows = (
        allocated_costs(user=user, start=start, end=end)
        .filter(**{f"{dimension}__isnull": False}, unallocated_reason="")
        .values(f"{dimension}_id", f"{dimension}__slug", "billing_currency")
        .annotate(
            # Names unlike the fields: F("effective_cost") below must mean the column.
            total_billed=Sum("billed_cost"),
            total_effective=Sum("effective_cost"),
            direct_effective_cost=Sum(
                Case(
                    When(allocated_method_id="direct", then=F("effective_cost")),
                    default=Value(0),
                    output_field=_MONEY,
                )
            ),
            shared_effective_cost=Sum(
                Case(When(shared, then=F("effective_cost")), default=Value(0), output_field=_MONEY)
            ),
        )
        .order_by("-total_effective", f"{dimension}__slug")
    )
    return [
        {
            dimension: row[f"{dimension}__slug"],
            f"{dimension}_id": row[f"{dimension}_id"],
            "billing_currency": row["billing_currency"],
            "billed_cost": row["total_billed"],
            "effective_cost": row["total_effective"],
            "direct_effective_cost": row["direct_effective_cost"],
            "shared_effective_cost": row["shared_effective_cost"],
        }
        for row in rows
    ]


def spend_by_team(*, user, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    """Allocated spend per team: direct cost plus its shares of shared pools (split out)."""
    return _spend_by("team", user=user, start=start, end=end)


def spend_by_model(*, user, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    """Allocated spend per model, direct and shared-pool shares (within what the user may see)."""
    return _spend_by("model", user=user, start=start, end=end)


def unit_costs(
    *, user, start: dt.date, end: dt.date, deployment_id: int | None = None, model_id: int | None = None
) -> QuerySet:
    """UnitCost rows (with their usage) per day × model × deployment."""
    if user is None or not user.is_authenticated:
        return UnitCost.objects.none()
    rows = UnitCost.objects.filter(day__gte=start, day__lte=end).select_related("model", "deployment")
    if deployment_id is not None:
        rows = rows.filter(deployment_id=deployment_id)
    if model_id is not None:
        rows = rows.filter(model_id=model_id)
    return rows.order_by("day", "deployment__slug", "model__slug")
