"""Writes of one budget threshold (the `/api/v1/thresholds` endpoint): permission-checked against
the budget's team, validated field by field, audited, then the budget is evaluated again.

The budget form and `/api/v1/budgets` replace a budget's thresholds as a whole
(budget_services.budget_update); these change one and keep its id. Both lift the threshold's open
action when what it does changes (its action, basis or throttle share) or it is deleted; a raised
level lifts through the evaluation (reason `raised`), as a raised budget does.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from governance.access import require_team_scope
from governance.budget_services import ThresholdData, _decimal, threshold_level, threshold_problems
from governance.choices import LiftReason
from governance.enforcement import Evaluation, budget_evaluate, enforcement_lift, policies_republish_enqueue
from governance.models import Budget, BudgetThreshold
from governance.services import audit_event_record

_FIELDS = ("percent", "amount", "basis", "action", "throttle_share")


def _normalised(data: ThresholdData) -> ThresholdData:
    percent, amount, _ = threshold_level(data)
    return ThresholdData(
        percent=percent,
        amount=amount,
        basis=data.basis,
        action=data.action or "",
        throttle_share=_decimal(data.throttle_share),
    )


def threshold_validate(
    *, budget: Budget, data: ThresholdData, threshold: BudgetThreshold | None = None
) -> None:
    """Raise ValidationError({field: [message]}) naming every problem, or return."""
    errors: dict[str, list[str]] = {}
    for field, message in threshold_problems(threshold=data, budget_action=budget.action):
        errors.setdefault(field, []).append(message[:1].upper() + message[1:])
    if not errors:
        level = _normalised(data)
        clash = BudgetThreshold.objects.filter(budget=budget, basis=level.basis)
        clash = (
            clash.filter(percent=level.percent)
            if level.percent is not None
            else clash.filter(amount=level.amount)
        )
        if threshold is not None:
            clash = clash.exclude(pk=threshold.pk)
        if clash.exists():
            field = "percent" if level.percent is not None else "amount"
            errors[field] = [
                f"Budget {budget.pk} already has a threshold at this level on {level.basis} spend."
            ]
    if errors:
        raise ValidationError(errors)


def _snapshot(threshold: BudgetThreshold) -> dict[str, Any]:
    values = {name: getattr(threshold, name) for name in _FIELDS}
    values = {name: (None if value is None else str(value)) for name, value in values.items()}
    return {"budget_id": threshold.budget_id, **values}


def _locked_budget(budget_id: int) -> Budget:
    # The evaluation locks the budget row too: an edit and an evaluation of one budget are serial.
    return Budget.objects.select_for_update().get(pk=budget_id)


def threshold_create(
    *, actor: AbstractBaseUser | None, budget: Budget, data: ThresholdData, remote_addr: str | None = None
) -> BudgetThreshold:
    require_team_scope(user=actor, team_id=budget.team_id, what="budget")
    threshold_validate(budget=budget, data=data)
    data = _normalised(data)
    with transaction.atomic():
        budget = _locked_budget(budget.pk)
        threshold = BudgetThreshold.objects.create(
            budget=budget, **{name: getattr(data, name) for name in _FIELDS}
        )
        audit_event_record(
            actor=actor, action="create", obj=threshold, changes=_snapshot(threshold), remote_addr=remote_addr
        )
        budget_evaluate(budget_id=budget.pk)
    return threshold


def _lift_open(*, budget: Budget, threshold: BudgetThreshold, evaluation: Evaluation, now) -> None:
    for enforcement in threshold.enforcements.filter(lifted_at__isnull=True):
        enforcement_lift(
            evaluation=evaluation, budget=budget, enforcement=enforcement,
            reason=LiftReason.THRESHOLD_REMOVED, at=now,
        )  # fmt: skip


def threshold_update(
    *,
    actor: AbstractBaseUser | None,
    threshold: BudgetThreshold,
    data: ThresholdData,
    remote_addr: str | None = None,
) -> BudgetThreshold:
    """Change one threshold of its budget (a threshold does not move to another budget)."""
    require_team_scope(user=actor, team_id=threshold.budget.team_id, what="budget")
    threshold_validate(budget=threshold.budget, data=data, threshold=threshold)
    data = _normalised(data)
    now = timezone.now()
    with transaction.atomic():
        budget = _locked_budget(threshold.budget_id)
        threshold = BudgetThreshold.objects.select_for_update().get(pk=threshold.pk)
        before = _snapshot(threshold)
        evaluation = Evaluation(budget_id=budget.pk, period=None)
        if (threshold.basis, threshold.action, threshold.throttle_share) != (
            data.basis,
            data.action,
            data.throttle_share,
        ):
            # What it does changed: the action it applied no longer stands for it.
            _lift_open(budget=budget, threshold=threshold, evaluation=evaluation, now=now)
        for name in _FIELDS:
            setattr(threshold, name, getattr(data, name))
        threshold.save()
        after = _snapshot(threshold)
        changes = {name: [before[name], after[name]] for name in after if before[name] != after[name]}
        if changes:
            audit_event_record(
                actor=actor, action="update", obj=threshold, changes=changes, remote_addr=remote_addr
            )
        if evaluation.republish:
            policies_republish_enqueue(reason="threshold_removed", budget_ids=[budget.pk])
        budget_evaluate(budget_id=budget.pk, now=now)
    return threshold


def threshold_delete(
    *, actor: AbstractBaseUser | None, threshold: BudgetThreshold, remote_addr: str | None = None
) -> None:
    require_team_scope(user=actor, team_id=threshold.budget.team_id, what="budget")
    now = timezone.now()
    with transaction.atomic():
        budget = _locked_budget(threshold.budget_id)
        threshold = BudgetThreshold.objects.select_for_update().get(pk=threshold.pk)
        evaluation = Evaluation(budget_id=budget.pk, period=None)
        _lift_open(budget=budget, threshold=threshold, evaluation=evaluation, now=now)
        audit_event_record(
            actor=actor, action="delete", obj=threshold, changes=_snapshot(threshold), remote_addr=remote_addr
        )
        threshold.delete()
        if evaluation.republish:
            policies_republish_enqueue(reason="threshold_removed", budget_ids=[budget.pk])
        budget_evaluate(budget_id=budget.pk, now=now)
