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
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
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


def _pool_get(*, defaults, **key) -> LeasePool:
    """Get or create the pool row; two replicas creating it at once both end up with the one row.
    `defaults` is called only when the pool is created (the first spend read is not cheap)."""
    pool = LeasePool.objects.filter(**key).first()
    if pool is not None:
        return pool
    try:
        with transaction.atomic():
            return LeasePool.objects.create(**key, **defaults())
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
            defaults=lambda: {
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
    pool = _pool_get(
        quota=quota, window_start=start, defaults=lambda: {"unit": quota.metric, "window_end": end}
    )
    limit, reason = quota_limit_effective(
        configured=quota.limit,
        team_id=quota.team_id,
        model_id=quota.model_id,
        states=enforcement_active(at=now),
    )
    return pool, Decimal(limit), limit == 0, reason


# Per process, briefly: what a budget's period is (kind, time zone, fiscal start, custom range). The
# amount, thresholds and actions are read by the grant itself, so a change to them applies at once;
# a change of period kind or time zone applies within this many seconds.
_PERIOD_CACHE_SECONDS = 10.0
_period_cache: dict[int, tuple[float, Budget]] = {}


def _budget_for_period(budget_id: int) -> Budget | None:
    cached = _period_cache.get(budget_id)
    if cached is not None and time.monotonic() - cached[0] < _PERIOD_CACHE_SECONDS:
        return cached[1]
    budget = (
        Budget.objects.filter(pk=budget_id)
        .only(
            "id", "period", "timezone", "fiscal_year_start_month", "custom_start", "custom_end", "is_active"
        )
        .first()
    )
    if budget is not None:
        _period_cache[budget_id] = (time.monotonic(), budget)
    return budget


def _budget_lease_fast(
    *,
    budget_id: int,
    holder: str,
    amount: Decimal,
    renew_lease_id: int | None,
    used: Decimal | None,
    now: dt.datetime,
    ttl: dt.timedelta,
) -> LeaseGrant | None:
    """One round trip once the period's pool exists, renewal included (None: take the full path,
    which creates the pool or returns a lease of another pool to its own)."""
    budget = _budget_for_period(budget_id)
    if budget is None or not budget.is_active:
        return None
    period = budget_period(budget=budget, at=now)
    if period is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pool_id, lease_id, granted, remaining, hard_limit, blocked, reason, window_end,"
            " renew_status FROM governance_budget_lease_grant(%s, %s, %s, %s, %s, %s, %s, %s)",
            [budget_id, period.start_at, holder[:200], amount, renew_lease_id,
             used if renew_lease_id is not None else None, now, now + ttl],
        )  # fmt: skip
        pool_id, lease_id, granted, remaining, limit, blocked, reason, window_end, renew_status = (
            cursor.fetchone()
        )
    if renew_status == "unknown":  # the function wrote nothing
        raise LeaseError({"renew": [f"No lease {renew_lease_id} held by {holder}."]})
    if pool_id is None or renew_status == "other_pool":
        return None
    if not reason and granted is not None and granted < amount:
        reason = (
            "The allowance left in this period is smaller than asked." if granted else "No allowance left."
        )
    return LeaseGrant(
        lease_id=lease_id, granted=granted, unit=LeaseUnit.MONEY, expires_at=now + ttl if lease_id else None,
        window_end=window_end, limit=limit, remaining=remaining, blocked=blocked, reason=reason,
    )  # fmt: skip


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
    ttl = dt.timedelta(seconds=settings.LEASE_TTL_SECONDS)
    if budget_id is not None and quota_id is None:
        # The common case, a replica renewing on its budget: the function checks the renewed lease
        # itself, so the whole request is one round trip (no read of the lease beforehand).
        fast = _budget_lease_fast(
            budget_id=budget_id, holder=holder, amount=amount, renew_lease_id=renew_lease_id, used=used,
            now=now, ttl=ttl,
        )  # fmt: skip
        if fast is not None:
            return fast
    previous = None
    if renew_lease_id is not None:
        previous = Lease.objects.select_related("pool").filter(pk=renew_lease_id, holder=holder).first()
        if previous is None:
            raise LeaseError({"renew": [f"No lease {renew_lease_id} held by {holder}."]})
        if budget_id is None and quota_id is None:
            budget_id, quota_id = previous.pool.budget_id, previous.pool.quota_id
    pool, limit, blocked, reason = _resolve(budget_id=budget_id, quota_id=quota_id, now=now)
    if previous is not None and previous.pool_id != pool.pk:
        # The renewed lease belongs to an earlier period or window: return it to its own pool.
        with transaction.atomic():
            _lease_close(lease_id=previous.pk, pool_id=previous.pool_id, used=used, now=now)
        previous = None
    # One round trip in autocommit: the function (migration 0004) locks the pool row, releases the
    # expired and the renewed grants, grants min(asked, what remains) and records it; the commit that
    # follows releases the lock. See the module docstring for the arithmetic.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT lease_id, granted, remaining"
            " FROM governance_lease_grant(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                pool.pk, holder[:200], amount, previous.pk if previous else None,
                used if previous else None, limit, blocked, now, now + ttl,
            ],
        )  # fmt: skip
        lease_id, granted, remaining = cursor.fetchone()
    if not reason and granted < amount:
        reason = (
            "The allowance left in this period is smaller than asked." if granted else "No allowance left."
        )
    return LeaseGrant(
        lease_id=lease_id,
        granted=granted,
        unit=pool.unit,
        expires_at=now + ttl if lease_id else None,
        window_end=pool.window_end,
        limit=limit,
        remaining=remaining,
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
