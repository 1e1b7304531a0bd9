"""Budget evaluation: spend (billed + estimated) against each threshold, actions applied once per
period and lifted when the period ends, the budget or threshold is raised, or the threshold goes.

Every applied or lifted action is one BudgetEnforcement change, one BudgetEvent and one audit entry,
in the same transaction; routing is asked to republish its policies after commit when a throttle,
reroute or block changed (by task name: governance does not import routing).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from celery import current_app
from django.db import transaction
from django.utils import timezone

from attribution.design import money_text
from governance.choices import AlertKind, BudgetAction, BudgetEventKind, LiftReason, Severity, ThresholdBasis
from governance.forecasting import Forecast, forecast_run_rate
from governance.models import Budget, BudgetEnforcement, BudgetEvent, BudgetThreshold, LeasePool
from governance.periods import Period, budget_period
from governance.services import alert_raise, audit_event_record
from governance.spend import DailySpend, SpendScope, scope_spend_daily

logger = logging.getLogger(__name__)
REPUBLISH_TASK = "routing.policies_republish"
ENFORCING_ACTIONS = (BudgetAction.THROTTLE, BudgetAction.REROUTE, BudgetAction.BLOCK)


@dataclass
class Evaluation:
    budget_id: int
    period: Period | None
    spend: DailySpend | None = None
    forecast: Forecast | None = None
    applied: list[int] = field(default_factory=list)  # enforcement ids
    lifted: list[int] = field(default_factory=list)
    republish: bool = False


def threshold_label(threshold: BudgetThreshold, currency: str) -> str:
    level = (
        f"{threshold.percent.normalize():f} %"
        if threshold.percent is not None
        else money_text(threshold.amount, currency)
    )
    return f"{level} of {threshold.basis} spend"


def policies_republish_enqueue(*, reason: str, budget_ids: list[int]) -> None:
    """After commit, ask routing to republish its policy documents (task by name)."""

    def send() -> None:
        current_app.send_task(REPUBLISH_TASK, kwargs={"reason": reason, "budget_ids": budget_ids})

    transaction.on_commit(send)


def _event_record(
    *,
    evaluation: Evaluation,
    budget: Budget,
    enforcement: BudgetEnforcement,
    kind: str,
    at: dt.datetime,
) -> BudgetEvent:
    spend = evaluation.spend
    return BudgetEvent.objects.create(
        budget=budget,
        threshold=enforcement.threshold,
        enforcement=enforcement,
        kind=kind,
        action=enforcement.action,
        threshold_label=enforcement.reason[:200],
        basis=enforcement.basis,
        period_start=enforcement.period_start,
        period_end=enforcement.period_end,
        currency=budget.currency,
        spend_billed=spend.billed_total if spend else Decimal("0"),
        spend_estimated=spend.estimated_total if spend else Decimal("0"),
        forecast=evaluation.forecast.point if evaluation.forecast else None,
        limit_amount=enforcement.limit_amount,
        lift_reason=enforcement.lift_reason,
        created_at=at,
    )


def enforcement_lift(
    *, evaluation: Evaluation, budget: Budget, enforcement: BudgetEnforcement, reason: str, at: dt.datetime
) -> None:
    changed = BudgetEnforcement.objects.filter(pk=enforcement.pk, lifted_at__isnull=True).update(
        lifted_at=at, lift_reason=reason
    )
    if changed != 1:
        return
    enforcement.lifted_at, enforcement.lift_reason = at, reason
    _event_record(
        evaluation=evaluation, budget=budget, enforcement=enforcement, kind=BudgetEventKind.LIFTED, at=at
    )
    audit_event_record(
        actor=None,
        action="budget_action_lift",
        obj=budget,
        changes={"enforcement": enforcement.pk, "action": enforcement.action, "reason": reason},
    )
    evaluation.lifted.append(enforcement.pk)
    if enforcement.action in ENFORCING_ACTIONS:
        evaluation.republish = True


def _apply(
    *,
    evaluation: Evaluation,
    budget: Budget,
    threshold: BudgetThreshold,
    period: Period,
    value: Decimal,
    limit: Decimal,
    at: dt.datetime,
) -> BudgetEnforcement:
    action = threshold.effective_action
    label = threshold_label(threshold, budget.currency)
    enforcement = BudgetEnforcement.objects.create(
        budget=budget,
        threshold=threshold,
        action=action,
        throttle_share=threshold.throttle_share if action == BudgetAction.THROTTLE else None,
        basis=threshold.basis,
        period_start=period.start,
        period_end=period.end,
        limit_amount=limit,
        reason=(
            f"{budget.name}: {threshold.basis} spend {money_text(value, budget.currency)} reached {label} "
            f"({money_text(limit, budget.currency)})"
        )[:300],
        applied_at=at,
    )
    _event_record(
        evaluation=evaluation, budget=budget, enforcement=enforcement, kind=BudgetEventKind.APPLIED, at=at
    )
    audit_event_record(
        actor=None,
        action="budget_action_apply",
        obj=budget,
        changes={
            "enforcement": enforcement.pk,
            "threshold": threshold.pk,
            "action": action,
            "spend": str(value),
            "limit": str(limit),
            "period_start": period.start.isoformat(),
        },
    )
    alert_raise(
        kind=AlertKind.BUDGET_THRESHOLD,
        severity=Severity.CRITICAL if action == BudgetAction.BLOCK else Severity.WARNING,
        dedup_key=f"budget:{budget.pk}:enforcement:{enforcement.pk}",
        message=enforcement.reason + (f"; action: {action}" if action != BudgetAction.NOTIFY else ""),
        details={
            "budget": budget.pk,
            "threshold": threshold.pk,
            "action": action,
            "basis": threshold.basis,
            "spend": str(value),
            "limit": str(limit),
            "currency": budget.currency,
            "period_start": period.start.isoformat(),
            "period_end": period.end.isoformat(),
        },
        team=budget.team,
        budget=budget,
        threshold=threshold,
    )
    evaluation.applied.append(enforcement.pk)
    if action in ENFORCING_ACTIONS:
        evaluation.republish = True
    return enforcement


def budget_spend(*, budget: Budget, period: Period) -> DailySpend:
    return scope_spend_daily(
        scope=SpendScope.of_budget(budget), start=period.start, end=period.end, currency=budget.currency
    )


def budget_forecast(*, budget: Budget, period: Period, spend: DailySpend, now: dt.datetime) -> Forecast:
    """Period-end forecast from the stored forecast of this period when there is one, else run rate."""
    stored = budget.forecasts.filter(period_start=period.start).first()
    return budget_forecast_from(stored=stored, period=period, spend=spend, now=now)


def budget_forecast_from(*, stored, period: Period, spend: DailySpend, now: dt.datetime) -> Forecast:
    """`budget_forecast` with the period's stored forecast (or None) already read."""
    if stored is not None:
        return Forecast(point=stored.point, lower=stored.lower, upper=stored.upper, method=stored.method)
    elapsed = period.elapsed_days(now)
    actuals = [amount for _, amount in spend.series(period.start, period.start + dt.timedelta(days=elapsed))]
    return forecast_run_rate(actuals=actuals, period=period)


def budget_evaluate(*, budget_id: int, now: dt.datetime | None = None) -> Evaluation:
    """Evaluate one budget now: lift what no longer holds, apply what newly crossed. Idempotent."""
    now = now or timezone.now()
    with transaction.atomic():
        # The row lock serialises evaluations of one budget (beat, spend landing, an edit), so a
        # threshold cannot fire twice; the partial unique index on open enforcements backs it up.
        budget = (
            Budget.objects.select_for_update(of=("self",)).select_related("team").filter(pk=budget_id).first()
        )
        if budget is None:
            return Evaluation(budget_id=budget_id, period=None)
        period = budget_period(budget=budget, at=now) if budget.is_active else None
        evaluation = Evaluation(budget_id=budget.pk, period=period)
        open_rows = list(budget.enforcements.filter(lifted_at__isnull=True).select_related("threshold"))
        still_open: dict[int, BudgetEnforcement] = {}
        for enforcement in open_rows:
            if not budget.is_active:
                enforcement_lift(
                    evaluation=evaluation, budget=budget, enforcement=enforcement,
                    reason=LiftReason.BUDGET_INACTIVE, at=now,
                )  # fmt: skip
            elif period is None or enforcement.period_start != period.start:
                enforcement_lift(
                    evaluation=evaluation, budget=budget, enforcement=enforcement,
                    reason=LiftReason.NEW_PERIOD, at=now,
                )  # fmt: skip
            elif enforcement.threshold_id is None:
                enforcement_lift(
                    evaluation=evaluation, budget=budget, enforcement=enforcement,
                    reason=LiftReason.THRESHOLD_REMOVED, at=now,
                )  # fmt: skip
            else:
                still_open[enforcement.threshold_id] = enforcement
        if period is not None:
            thresholds = list(budget.thresholds.all())
            evaluation.spend = budget_spend(budget=budget, period=period)
            # Lease pools of this period grant against the spend known now.
            LeasePool.objects.filter(budget_id=budget.pk, window_start=period.start_at).update(
                spend_known=evaluation.spend.total
            )
            if any(threshold.basis == ThresholdBasis.FORECAST for threshold in thresholds):
                evaluation.forecast = budget_forecast(
                    budget=budget, period=period, spend=evaluation.spend, now=now
                )
            for threshold in thresholds:
                value = (
                    evaluation.forecast.point
                    if threshold.basis == ThresholdBasis.FORECAST
                    else evaluation.spend.total
                )
                limit = threshold.limit_for(budget.amount)
                current = still_open.get(threshold.pk)
                if current is not None:
                    # Raised above the spend: the action lifts and the threshold re-arms.
                    if limit > current.limit_amount and value < limit:
                        enforcement_lift(
                            evaluation=evaluation, budget=budget, enforcement=current,
                            reason=LiftReason.RAISED, at=now,
                        )  # fmt: skip
                    continue
                if value >= limit:
                    _apply(
                        evaluation=evaluation, budget=budget, threshold=threshold, period=period,
                        value=value, limit=limit, at=now,
                    )  # fmt: skip
        if evaluation.republish:
            policies_republish_enqueue(reason="budget_actions_changed", budget_ids=[budget.pk])
    return evaluation


def budgets_evaluate(
    *, budget_ids: list[int] | None = None, now: dt.datetime | None = None
) -> list[Evaluation]:
    """Evaluate every budget (or those given), each in its own transaction."""
    ids = budget_ids
    if ids is None:
        # Inactive budgets with open actions are evaluated too, so their actions lift.
        ids = list(
            Budget.objects.filter(is_active=True)
            .values_list("pk", flat=True)
            .union(
                BudgetEnforcement.objects.filter(lifted_at__isnull=True).values_list("budget_id", flat=True)
            )
        )
    return [budget_evaluate(budget_id=budget_id, now=now) for budget_id in sorted(ids)]
