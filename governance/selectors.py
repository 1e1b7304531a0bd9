"""Reads about roles: who a user is and which teams they may see or manage.

Roles are Django groups named after governance.choices.Role; team-level rights are Memberships.
Row scoping itself lives in the querysets' `restrict(user)`; these helpers answer the questions a
page or form asks about the user (what to show, which teams to offer).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q
from django.utils import timezone

from attribution.models import Team
from governance.choices import MembershipRole, Role
from governance.models import BudgetEnforcement, Membership, Quota

# Highest first: a user in several groups is shown as the most powerful one.
_ROLE_ORDER: tuple[Role, ...] = (Role.ADMIN, Role.FINANCE, Role.TEAM_LEAD, Role.VIEWER)


def user_roles(*, user: AbstractBaseUser | AnonymousUser) -> list[Role]:
    if not user.is_authenticated:
        return []
    names = set(user.groups.values_list("name", flat=True))
    return [role for role in _ROLE_ORDER if role.value in names]


def user_primary_role(*, user: AbstractBaseUser | AnonymousUser) -> Role | None:
    if user.is_authenticated and user.is_superuser:
        return Role.ADMIN
    roles = user_roles(user=user)
    return roles[0] if roles else None


def user_sees_all_teams(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    """attribution.view_all_teams (admin and finance, see setup_roles): every row, unallocated
    cost included."""
    if not user.is_authenticated:
        return False
    return user.has_perm("attribution.view_all_teams")


def user_manages_all_teams(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    """governance.edit_all_teams: budgets and quotas of any team, organisation-wide included."""
    if not user.is_authenticated:
        return False
    return user.has_perm("governance.edit_all_teams")


def user_lead_team_ids(*, user: AbstractBaseUser | AnonymousUser) -> set[int]:
    """Teams whose budgets and quotas this user may edit as their lead."""
    if not user.is_authenticated:
        return set()
    return set(
        Membership.objects.filter(user=user, role=MembershipRole.LEAD).values_list("team_id", flat=True)
    )


def user_manageable_teams(*, user: AbstractBaseUser | AnonymousUser):
    """Teams offered when this user creates or edits a budget or quota."""
    if user_manages_all_teams(user=user):
        return Team.objects.all()
    if not user.is_authenticated or not user.has_perm("governance.change_budget"):
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user, memberships__role=MembershipRole.LEAD)


def user_can_manage_team(*, user: AbstractBaseUser | AnonymousUser, team_id: int | None) -> bool:
    """May this user edit budgets/quotas of this team? Organisation-wide (no team) is admin only."""
    if user_manages_all_teams(user=user):
        return True
    if team_id is None or not user.is_authenticated:
        return False
    return user.has_perm("governance.change_budget") and team_id in user_lead_team_ids(user=user)


# --- The contract with routing: actions in force and effective quotas ------------------------------


@dataclass(frozen=True)
class EnforcementState:
    """A throttle, reroute or block in force for a budget's scope (routing reads these)."""

    budget_id: int
    team_id: int | None
    model_id: int | None
    provider: str
    action: str  # "throttle" | "reroute" | "block"
    throttle_share: Decimal | None
    reason: str


@dataclass(frozen=True)
class EffectiveQuota:
    """A quota after the throttles and blocks in force: `limit` is what gateways must enforce."""

    quota_id: int
    team_id: int
    model_id: int | None
    gateway_id: int | None
    metric: str  # "tokens" | "requests"
    window: str  # "minute" | "day"
    limit: int
    configured_limit: int
    reason: str


def enforcement_active(*, at: dt.datetime | None = None) -> list[EnforcementState]:
    """Throttle, reroute and block actions in force at `at` (default now), oldest first."""
    at = at or timezone.now()
    rows = (
        BudgetEnforcement.objects.filter(action__in=("throttle", "reroute", "block"), applied_at__lte=at)
        .filter(Q(lifted_at__isnull=True) | Q(lifted_at__gt=at))
        .select_related("budget")
        .order_by("applied_at", "id")
    )
    return [
        EnforcementState(
            budget_id=row.budget_id,
            team_id=row.budget.team_id,
            model_id=row.budget.model_id,
            provider=row.budget.provider,
            action=row.action,
            throttle_share=row.throttle_share,
            reason=row.reason,
        )
        for row in rows
    ]


def _covers(state: EnforcementState, *, team_id: int, model_id: int | None) -> bool:
    """Does an action on a budget's scope reach a team × model quota? Budgets narrowed to a provider
    act through routing (which deployments serve), not through the team's quotas."""
    if state.provider:
        return False
    if state.team_id is not None and state.team_id != team_id:
        return False
    return state.model_id is None or state.model_id == model_id


def quota_limit_effective(
    *, configured: int, team_id: int, model_id: int | None, states: list[EnforcementState]
) -> tuple[int, str]:
    """A block makes the quota zero; the strongest throttle cuts it by its share (rounded down)."""
    reaching = [state for state in states if _covers(state, team_id=team_id, model_id=model_id)]
    blocks = [state for state in reaching if state.action == "block"]
    if blocks:
        return 0, blocks[0].reason
    throttles = [state for state in reaching if state.action == "throttle" and state.throttle_share]
    if throttles:
        strongest = max(throttles, key=lambda state: state.throttle_share)
        limit = int(
            (Decimal(configured) * (1 - strongest.throttle_share)).to_integral_value(rounding=ROUND_FLOOR)
        )
        return limit, strongest.reason
    return configured, ""


def quotas_effective(*, team_id: int | None = None, model_id: int | None = None) -> list[EffectiveQuota]:
    """Every quota (of a team and/or model when given) with its limit after actions in force."""
    quotas = Quota.objects.order_by("team_id", "model_id", "gateway_id", "metric", "window", "id")
    if team_id is not None:
        quotas = quotas.filter(team_id=team_id)
    if model_id is not None:
        quotas = quotas.filter(model_id=model_id)
    states = enforcement_active()
    result = []
    for quota in quotas:
        limit, reason = quota_limit_effective(
            configured=quota.limit, team_id=quota.team_id, model_id=quota.model_id, states=states
        )
        result.append(
            EffectiveQuota(
                quota_id=quota.pk,
                team_id=quota.team_id,
                model_id=quota.model_id,
                gateway_id=quota.gateway_id,
                metric=quota.metric,
                window=quota.window,
                limit=limit,
                configured_limit=quota.limit,
                reason=reason,
            )
        )
    return result


# --- Budget status ------------------------------------------------------------------------------


def budget_status(*, budget, now: dt.datetime | None = None) -> dict:
    """What a budget's page and API show: this period's spend in its two parts, the forecast, the
    actions in force."""
    return budget_statuses(budgets=[budget], now=now)[0]


@dataclass(frozen=True)
class BudgetStatusDetail:
    """A budget's status with the reads it was computed from, so the budget page draws its chart
    from the same spend and stored forecast instead of reading them a second time."""

    status: dict
    spend: object | None  # governance.spend.DailySpend of the period; None without a period
    stored_forecast: object | None  # the period's BudgetForecast (with its daily path) or None


def budget_status_detail(*, budget, now: dt.datetime | None = None) -> BudgetStatusDetail:
    """`budget_status` of one budget plus its period's daily spend and stored forecast."""
    statuses, spends, stored = _budget_statuses(budgets=[budget], now=now, with_daily_forecast=True)
    status = statuses[0]
    key = (budget.pk, status["period_start"])
    return BudgetStatusDetail(status=status, spend=spends.get(budget.pk), stored_forecast=stored.get(key))


def budget_statuses(*, budgets, now: dt.datetime | None = None) -> list[dict]:
    """`budget_status` of each budget, in a fixed number of queries however many budgets there are
    (the budgets page): open actions, stored forecasts and the spend of every scope are each read
    once for all of them."""
    return _budget_statuses(budgets=budgets, now=now, with_daily_forecast=False)[0]


def _budget_statuses(*, budgets, now: dt.datetime | None, with_daily_forecast: bool) -> tuple:
    """`budget_statuses`, with the spend per budget id and the stored forecasts per (budget id,
    period start) it read. The forecasts' daily path (a long JSON list) is read only when asked."""
    from governance.enforcement import budget_forecast_from
    from governance.models import BudgetForecast
    from governance.periods import budget_period
    from governance.spend import SpendRequest, SpendScope, scopes_spend_daily

    budgets = list(budgets)
    now = now or timezone.now()
    periods = [budget_period(budget=budget, at=now) if budget.is_active else None for budget in budgets]
    ids = [budget.pk for budget in budgets]
    actions: dict[int, list[dict]] = {budget_id: [] for budget_id in ids}
    for row in BudgetEnforcement.objects.filter(budget_id__in=ids, lifted_at__isnull=True).order_by(
        "applied_at"
    ):
        actions[row.budget_id].append(
            {
                "id": row.pk,
                "action": row.action,
                "throttle_share": None if row.throttle_share is None else str(row.throttle_share),
                "since": row.applied_at.isoformat(),
                "reason": row.reason,
            }
        )
    starts = {period.start for period in periods if period is not None}
    stored_forecasts = {
        (row.budget_id, row.period_start): row
        for row in (
            BudgetForecast.objects.filter(budget_id__in=ids, period_start__in=starts)
            if with_daily_forecast
            else BudgetForecast.objects.filter(budget_id__in=ids, period_start__in=starts).defer("daily")
        )
    }
    with_period = [(budget, period) for budget, period in zip(budgets, periods, strict=True) if period]
    spends = scopes_spend_daily(
        requests=[
            SpendRequest(SpendScope.of_budget(budget), period.start, period.end, budget.currency)
            for budget, period in with_period
        ]
    )
    spend_of = {budget.pk: spend for (budget, _), spend in zip(with_period, spends, strict=True)}
    statuses = []
    for budget, period in zip(budgets, periods, strict=True):
        status = {
            "period_start": period.start if period else None,
            "period_end": period.end if period else None,
            "currency": budget.currency,
            "amount": budget.amount,
            "spend_billed": Decimal("0"),
            "spend_estimated": Decimal("0"),
            "spend_total": Decimal("0"),
            "forecast": None,
            "forecast_lower": None,
            "forecast_upper": None,
            "forecast_method": "",
            "backtest_mape": None,
            "actions": actions[budget.pk],
            "missing_rates": [],
        }
        statuses.append(status)
        if period is None:
            continue
        spend = spend_of[budget.pk]
        stored = stored_forecasts.get((budget.pk, period.start))
        forecast = budget_forecast_from(stored=stored, period=period, spend=spend, now=now)
        status.update(
            spend_billed=spend.billed_total,
            spend_estimated=spend.estimated_total,
            spend_total=spend.total,
            forecast=forecast.point,
            forecast_lower=forecast.lower,
            forecast_upper=forecast.upper,
            forecast_method=forecast.method,
            backtest_mape=stored.backtest_mape if stored else None,
            missing_rates=[f"{day} {currency}" for day, currency in spend.missing_rates],
        )
    return statuses, spend_of, stored_forecasts
