"""Writes of budgets and their thresholds: validated, permission-checked, audited, then evaluated.

Errors a user can cause raise ValidationError with a message per field (the API answers 400 with
them) before anything is written; the write, its audit entry and the evaluation that follows (a raise
lifts actions at once) share one transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from attribution.choices import Provider
from attribution.currency.codes import ISO_4217_CODES
from governance.access import require_team_scope
from governance.choices import BudgetAction, BudgetPeriod, LiftReason, ThresholdBasis
from governance.enforcement import Evaluation, budget_evaluate, enforcement_lift, policies_republish_enqueue
from governance.models import Budget, BudgetThreshold
from governance.periods import timezone_is_valid
from governance.services import audit_event_record

MAX_PERCENT = Decimal("1000")
CENT = Decimal("0.01")


@dataclass
class ThresholdData:
    percent: Decimal | None = None
    amount: Decimal | None = None
    basis: str = ThresholdBasis.ACTUAL
    action: str = ""
    throttle_share: Decimal | None = None

    def key(self) -> tuple:
        return (self.percent, self.amount, self.basis, self.action, self.throttle_share)

    def as_json(self) -> dict[str, Any]:
        return {name: (None if value is None else str(value)) for name, value in asdict(self).items()}


@dataclass
class BudgetData:
    name: str
    amount: Decimal
    currency: str = "USD"
    team_id: int | None = None
    model_id: int | None = None
    provider: str = ""
    account_id: int | None = None
    period: str = BudgetPeriod.MONTH
    timezone: str = "UTC"
    fiscal_year_start_month: int = 1
    custom_start: dt.date | None = None
    custom_end: dt.date | None = None
    action: str = BudgetAction.NOTIFY
    is_active: bool = True
    thresholds: list[ThresholdData] = field(default_factory=list)


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


AMOUNT_PLACES = Decimal("1e-10")  # budget_threshold.amount is numeric(24, 10)
MAX_AMOUNT = Decimal("1e14")


def threshold_level(threshold: ThresholdData) -> tuple[Decimal | None, Decimal | None, str]:
    """(percent, amount, basis) as the table stores them: the percent to the hundredth, the amount
    to its column's ten places. Two thresholds of one budget with the same level are one
    (the table's threshold_unique): 80.001 % and 80.004 % are both 80.00 %."""
    percent, amount = _decimal(threshold.percent), _decimal(threshold.amount)
    try:
        if percent is not None and percent.is_finite():
            percent = percent.quantize(CENT)
        if amount is not None and amount.is_finite():
            amount = amount.quantize(AMOUNT_PLACES)
    except InvalidOperation:
        pass  # more digits than a Decimal context holds: threshold_problems refuses such an amount
    return percent, amount, threshold.basis


def threshold_problems(*, threshold: ThresholdData, budget_action: str) -> list[tuple[str, str]]:
    """(field, message) for each problem of one threshold; `budget_action` is what a threshold
    without its own action does."""
    problems: list[tuple[str, str]] = []
    percent, level = _decimal(threshold.percent), _decimal(threshold.amount)
    if (percent is None) == (level is None):
        problems.append(("percent", "give either a percent or an amount, not both or neither."))
    # Stored to the hundredth: 0.004 % would be stored as 0 and refused by the table.
    if percent is not None and not (
        percent.is_finite() and 0 < percent <= MAX_PERCENT and percent.quantize(CENT) > 0
    ):
        problems.append(("percent", f"percent must be above 0 and at most 1000, got {percent}."))
    if level is not None and not (level.is_finite() and level > 0):
        problems.append(("amount", f"amount must be greater than zero, got {level}."))
    elif level is not None and level >= MAX_AMOUNT:
        problems.append(("amount", f"amount must be below 10^14 (the column's size), got {level}."))
    if threshold.basis not in ThresholdBasis.values:
        problems.append(("basis", f"basis must be 'actual' or 'forecast', got {threshold.basis!r}."))
    if threshold.action and threshold.action not in BudgetAction.values:
        problems.append(("action", f"unknown action {threshold.action!r}."))
    effective = threshold.action or budget_action
    share = _decimal(threshold.throttle_share)
    if effective == BudgetAction.THROTTLE:
        if share is None or not (share.is_finite() and 0 < share <= 1):
            problems.append(
                ("throttle_share", "a throttle needs throttle_share above 0 and at most 1 (0.5 halves).")
            )
    elif share is not None:
        problems.append(("throttle_share", "throttle_share is only for the throttle action."))
    return problems


def _level_label(level: tuple[Decimal | None, Decimal | None, str]) -> str:
    percent, amount, basis = level
    shown = f"{percent} %" if percent is not None else f"{amount.normalize():f}"
    return f"{shown} of {basis} spend, as stored"


def budget_data_validate(*, data: BudgetData, budget: Budget | None = None) -> None:
    """Raise ValidationError({field: [message]}) listing every problem, or return."""
    errors: dict[str, list[str]] = {}

    def fail(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if not data.name or not data.name.strip():
        fail("name", "A budget needs a name.")
    amount = _decimal(data.amount)
    if amount is None or not amount.is_finite():
        fail("amount", f"Amount must be a number, got {data.amount!r}.")
    elif amount <= 0:
        fail("amount", f"Amount must be greater than zero, got {amount}.")
    if (data.currency or "").upper() not in ISO_4217_CODES or data.currency != data.currency.upper():
        fail("currency", f"Unknown currency {data.currency!r}: use an ISO 4217 code such as USD or EUR.")
    if data.provider and data.provider not in Provider.values:
        fail("provider", f"Unknown provider {data.provider!r}; one of {', '.join(Provider.values)}.")
    if data.period not in BudgetPeriod.values:
        fail("period", f"Unknown period {data.period!r}; one of {', '.join(BudgetPeriod.values)}.")
    if data.period == BudgetPeriod.CUSTOM:
        if data.custom_start is None or data.custom_end is None:
            fail("custom_end", "A custom period needs custom_start and custom_end (the last day).")
        elif data.custom_end < data.custom_start:
            fail(
                "custom_end",
                f"The custom range ends ({data.custom_end}) before it starts ({data.custom_start}).",
            )
        elif data.custom_end == data.custom_start:
            # The table's check (budget_custom_range_valid) wants the end after the start; a
            # one-day range reached it as a 500 (found by Schemathesis, issue 15).
            fail("custom_end", f"The custom range must end after it starts (both are {data.custom_start}).")
    elif data.custom_start is not None or data.custom_end is not None:
        fail("custom_start", "custom_start and custom_end are only for the custom period.")
    if not timezone_is_valid(data.timezone or ""):
        fail("timezone", f"Unknown time zone {data.timezone!r}; use an IANA name such as Europe/Berlin.")
    if not (isinstance(data.fiscal_year_start_month, int) and 1 <= data.fiscal_year_start_month <= 12):
        fail("fiscal_year_start_month", "The fiscal year start month is a number from 1 to 12.")
    if data.action not in BudgetAction.values:
        fail("action", f"Unknown action {data.action!r}; one of {', '.join(BudgetAction.values)}.")
    seen: dict[tuple, int] = {}
    for index, threshold in enumerate(data.thresholds, start=1):
        where = f"thresholds[{index}]"
        problems = threshold_problems(threshold=threshold, budget_action=data.action)
        for _field, message in problems:
            fail(where, f"Threshold {index}: {message}")
        if problems:
            continue
        # Compared as stored: levels that differ only beyond the stored places are the same row
        # (they reached the table's unique constraint as a 500).
        level = threshold_level(threshold)
        if level in seen:
            fail(
                where,
                f"Threshold {index}: the same level and basis as threshold {seen[level]} "
                f"({_level_label(level)}); give each level once.",
            )
        seen.setdefault(level, index)
    if data.name and data.name.strip():
        clash = Budget.objects.filter(name=data.name.strip(), team_id=data.team_id)
        if budget is not None:
            clash = clash.exclude(pk=budget.pk)
        if clash.exists():
            fail("name", f"A budget named {data.name.strip()!r} already exists for this team.")
    if errors:
        raise ValidationError(errors)


_FIELDS = (
    "name", "team_id", "model_id", "provider", "account_id", "period", "timezone", "fiscal_year_start_month",
    "custom_start", "custom_end", "amount", "currency", "action", "is_active",
)  # fmt: skip


def _snapshot(budget: Budget) -> dict[str, Any]:
    values = {name: getattr(budget, name) for name in _FIELDS}
    values = {
        name: (value if isinstance(value, (int, bool, type(None))) else str(value))
        for name, value in values.items()
    }
    values["thresholds"] = sorted(
        (_threshold_data(threshold).as_json() for threshold in budget.thresholds.all()), key=str
    )
    return values


def _threshold_data(threshold: BudgetThreshold) -> ThresholdData:
    return ThresholdData(
        percent=threshold.percent,
        amount=threshold.amount,
        basis=threshold.basis,
        action=threshold.action,
        throttle_share=threshold.throttle_share,
    )


def _normalised(data: BudgetData) -> BudgetData:
    data.name = data.name.strip()
    data.amount = _decimal(data.amount)
    for threshold in data.thresholds:
        threshold.percent, threshold.amount, _ = threshold_level(threshold)
        threshold.throttle_share = _decimal(threshold.throttle_share)
    return data


def _thresholds_sync(*, budget: Budget, wanted: list[ThresholdData], evaluation: Evaluation, now) -> None:
    """Keep thresholds that did not change (their open actions stay), remove the others (their
    actions lift, reason threshold_removed), add the new ones."""
    existing = {_threshold_data(threshold).key(): threshold for threshold in budget.thresholds.all()}
    wanted_keys = {item.key() for item in wanted}
    for key, threshold in existing.items():
        if key in wanted_keys:
            continue
        for enforcement in threshold.enforcements.filter(lifted_at__isnull=True):
            enforcement_lift(
                evaluation=evaluation, budget=budget, enforcement=enforcement,
                reason=LiftReason.THRESHOLD_REMOVED, at=now,
            )  # fmt: skip
        threshold.delete()
    for item in wanted:
        if item.key() not in existing:
            BudgetThreshold.objects.create(
                budget=budget,
                percent=item.percent,
                amount=item.amount,
                basis=item.basis,
                action=item.action,
                throttle_share=item.throttle_share,
            )


def budget_create(
    *, actor: AbstractBaseUser | None, data: BudgetData, remote_addr: str | None = None
) -> Budget:
    require_team_scope(user=actor, team_id=data.team_id, what="budget")
    budget_data_validate(data=data)
    data = _normalised(data)
    with transaction.atomic():
        budget = Budget.objects.create(
            **{name: getattr(data, name) for name in _FIELDS},
            created_by=actor if actor and actor.pk else None,
        )
        for item in data.thresholds:
            BudgetThreshold.objects.create(
                budget=budget,
                percent=item.percent,
                amount=item.amount,
                basis=item.basis,
                action=item.action,
                throttle_share=item.throttle_share,
            )
        audit_event_record(
            actor=actor, action="create", obj=budget, changes=_snapshot(budget), remote_addr=remote_addr
        )
        budget_evaluate(budget_id=budget.pk)
    return budget


def budget_update(
    *, actor: AbstractBaseUser | None, budget: Budget, data: BudgetData, remote_addr: str | None = None
) -> Budget:
    """Replace the budget's fields and thresholds. A lead may not move a budget to another team."""
    require_team_scope(user=actor, team_id=budget.team_id, what="budget")
    require_team_scope(user=actor, team_id=data.team_id, what="budget")
    budget_data_validate(data=data, budget=budget)
    data = _normalised(data)
    from django.utils import timezone

    now = timezone.now()
    with transaction.atomic():
        budget = Budget.objects.select_for_update().get(pk=budget.pk)
        before = _snapshot(budget)
        for name in _FIELDS:
            setattr(budget, name, getattr(data, name))
        budget.save()
        evaluation = Evaluation(budget_id=budget.pk, period=None)
        _thresholds_sync(budget=budget, wanted=data.thresholds, evaluation=evaluation, now=now)
        after = _snapshot(budget)
        changes = {name: [before.get(name), after[name]] for name in after if before.get(name) != after[name]}
        if changes:
            audit_event_record(
                actor=actor, action="update", obj=budget, changes=changes, remote_addr=remote_addr
            )
        if evaluation.republish:
            policies_republish_enqueue(reason="threshold_removed", budget_ids=[budget.pk])
        budget_evaluate(budget_id=budget.pk, now=now)
    return budget


def budget_delete(*, actor: AbstractBaseUser | None, budget: Budget, remote_addr: str | None = None) -> None:
    require_team_scope(user=actor, team_id=budget.team_id, what="budget")
    with transaction.atomic():
        budget = Budget.objects.select_for_update().get(pk=budget.pk)
        enforcing = budget.enforcements.filter(
            lifted_at__isnull=True, action__in=("throttle", "reroute", "block")
        ).exists()
        audit_event_record(
            actor=actor, action="delete", obj=budget, changes=_snapshot(budget), remote_addr=remote_addr
        )
        budget_id = budget.pk
        budget.delete()
        if enforcing:
            policies_republish_enqueue(reason="budget_deleted", budget_ids=[budget_id])
