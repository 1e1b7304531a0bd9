"""Leases: hand a shared allowance (a budget's block limit this period, a quota's window) to many
gateway replicas without the check-then-increment race.

Every grant, renewal and return for one pool runs in one transaction that first locks the pool row
(SELECT ... FOR UPDATE). Under that lock the pool releases expired grants, closes the lease being
renewed (adding what the gateway used), and grants

    min(requested, limit - max(spend known, used by leases) - outstanding grants)

so the sum of outstanding grants never exceeds what remains, whatever the number of replicas.
Overspend past the limit is then bounded by the grants outstanding. A blocked scope gets zero.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance.choices import BudgetAction, LeaseUnit, ThresholdBasis
from governance.models import Budget, BudgetEnforcement, Lease, LeasePool, Quota
from governance.periods import budget_period
from governance.selectors import enforcement_active, quota_limit_effective

ZERO = Decimal("0")


@dataclass(frozen=True)
class LeaseGrant:
    lease_id: int | None
    granted: Decimal
    unit: str
    expires_at: dt.datetime | None
    window_end: dt.datetime | None
    limit: Decimal | None
    remaining: Decimal | None  # after this grant, outstanding grants deducted
    blocked: bool
    reason: str


class LeaseError(ValidationError):
    pass


def _quota_window(quota: Quota, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    if quota.window == "minute":
        start = now.replace(second=0, microsecond=0)
        return start, start + dt.timedelta(minutes=1)
    start = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + dt.timedelta(days=1)


def _budget_limit(budget: Budget) -> Decimal | None:
    """The lowest actual-spend block threshold of the budget: the hard limit leases protect."""
    limits = [
        threshold.limit_for(budget.amount)
        for threshold in budget.thresholds.all()
        if threshold.effective_action == BudgetAction.BLOCK and threshold.basis == ThresholdBasis.ACTUAL
    ]
    return min(limits) if limits else None


def _pool_get(*, defaults: dict, **key) -> LeasePool:
    """Get or create the pool row; two replicas creating it at once both end up with the one row."""
    pool = LeasePool.objects.filter(**key).first()
    if pool is not None:
        return pool
    try:
        with transaction.atomic():
            return LeasePool.objects.create(**key, **defaults)
    except IntegrityError:
        return LeasePool.objects.get(**key)


def _resolve(
    *, budget_id: int | None, quota_id: int | None, now: dt.datetime
) -> tuple[LeasePool, Decimal | None, bool, str]:
    """The pool of this scope now, its limit (None = no hard limit), whether it is blocked, why."""
    if (budget_id is None) == (quota_id is None):
        raise LeaseError({"scope": ["Ask for a lease on either a budget or a quota."]})
    if budget_id is not None:
        budget = Budget.objects.filter(pk=budget_id).prefetch_related("thresholds").first()
        if budget is None:
            raise LeaseError({"budget": [f"No budget with id {budget_id}."]})
        period = budget_period(budget=budget, at=now) if budget.is_active else None
        if period is None:
            raise LeaseError({"budget": [f"Budget {budget_id} has no period in force now."]})
        pool = _pool_get(
            budget=budget,
            window_start=period.start_at,
            defaults={
                "unit": LeaseUnit.MONEY,
                "window_end": period.end_at,
                "spend_known": _spend_now(budget, period),
            },
        )
        block = (
            BudgetEnforcement.objects.filter(budget=budget, lifted_at__isnull=True, action=BudgetAction.BLOCK)
            .values_list("reason", flat=True)
            .first()
        )
        return pool, _budget_limit(budget), block is not None, block or ""
    quota = Quota.objects.filter(pk=quota_id).first()
    if quota is None:
        raise LeaseError({"quota": [f"No quota with id {quota_id}."]})
    start, end = _quota_window(quota, now)
    pool = _pool_get(quota=quota, window_start=start, defaults={"unit": quota.metric, "window_end": end})
    limit, reason = quota_limit_effective(
        configured=quota.limit,
        team_id=quota.team_id,
        model_id=quota.model_id,
        states=enforcement_active(at=now),
    )
    return pool, Decimal(limit), limit == 0, reason


def _spend_now(budget: Budget, period) -> Decimal:
    from governance.enforcement import budget_spend

    return budget_spend(budget=budget, period=period).total


def lease_request(
    *,
    holder: str,
    amount: Decimal,
    budget_id: int | None = None,
    quota_id: int | None = None,
    renew_lease_id: int | None = None,
    used: Decimal | None = None,
    now: dt.datetime | None = None,
) -> LeaseGrant:
    """Grant up to `amount` from the scope's pool; renewing returns the old lease with `used`.

    `amount` 0 with a lease to renew just returns it (a gateway shutting down)."""
    now = now or timezone.now()
    if amount is None or amount < 0:
        raise LeaseError({"amount": ["Ask for an amount of zero or more."]})
    if used is not None and used < 0:
        raise LeaseError({"used": ["used cannot be negative."]})
    previous = None
    if renew_lease_id is not None:
        previous = Lease.objects.select_related("pool").filter(pk=renew_lease_id, holder=holder).first()
        if previous is None:
            raise LeaseError({"renew": [f"No lease {renew_lease_id} held by {holder}."]})
        if budget_id is None and quota_id is None:
            budget_id, quota_id = previous.pool.budget_id, previous.pool.quota_id
    pool, limit, blocked, reason = _resolve(budget_id=budget_id, quota_id=quota_id, now=now)
    ttl = dt.timedelta(seconds=settings.LEASE_TTL_SECONDS)
    with transaction.atomic():
        # Lock order: pools only, one at a time, so concurrent requests cannot deadlock.
        if previous is not None and previous.pool_id != pool.pk:
            _lease_close(lease_id=previous.pk, pool_id=previous.pool_id, used=used, now=now)
        pool = LeasePool.objects.select_for_update().get(pk=pool.pk)
        expired = list(
            Lease.objects.filter(pool=pool, closed_at__isnull=True, expires_at__lte=now).values_list(
                "pk", "granted"
            )
        )
        if expired:
            Lease.objects.filter(pk__in=[pk for pk, _ in expired]).update(closed_at=now)
            pool.outstanding -= sum((granted for _, granted in expired), ZERO)
        if previous is not None and previous.pool_id == pool.pk:
            closed = Lease.objects.filter(pk=previous.pk, closed_at__isnull=True).update(
                closed_at=now, used=used
            )
            if closed:
                pool.outstanding -= previous.granted
            pool.consumed += used or ZERO
        if limit is None:
            available = amount
        else:
            available = limit - max(pool.spend_known, pool.consumed) - pool.outstanding
        granted = ZERO if blocked else max(ZERO, min(amount, available))
        lease = None
        if amount > 0:
            lease = Lease.objects.create(
                pool=pool, holder=holder[:200], requested=amount, granted=granted, expires_at=now + ttl
            )
            pool.outstanding += granted
            pool.granted_total += granted
        pool.save(update_fields=["outstanding", "consumed", "granted_total", "updated_at"])
    if not reason and granted < amount:
        reason = (
            "The allowance left in this period is smaller than asked." if granted else "No allowance left."
        )
    return LeaseGrant(
        lease_id=lease.pk if lease else None,
        granted=granted,
        unit=pool.unit,
        expires_at=lease.expires_at if lease else None,
        window_end=pool.window_end,
        limit=limit,
        remaining=None if limit is None else limit - max(pool.spend_known, pool.consumed) - pool.outstanding,
        blocked=blocked,
        reason=reason,
    )


def _lease_close(*, lease_id: int, pool_id: int, used: Decimal | None, now: dt.datetime) -> None:
    pool = LeasePool.objects.select_for_update().get(pk=pool_id)
    lease = Lease.objects.get(pk=lease_id)
    if Lease.objects.filter(pk=lease_id, closed_at__isnull=True).update(closed_at=now, used=used):
        pool.outstanding -= lease.granted
    pool.consumed += used or ZERO
    pool.save(update_fields=["outstanding", "consumed", "updated_at"])
