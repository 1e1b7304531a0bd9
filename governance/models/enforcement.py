"""What budgets did: the actions in force, the history of every change, and the forecasts."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from governance.choices import BudgetAction, BudgetEventKind, LiftReason, ThresholdBasis
from governance.models.base import MONEY, Budget, BudgetThreshold


class BudgetEnforcement(models.Model):
    """A threshold that fired in a period: its action is in force until `lifted_at`.

    At most one open row per threshold (a partial unique index), so a threshold fires once per
    period however many evaluations race; lifting it re-arms the threshold."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="enforcements")
    threshold = models.ForeignKey(
        BudgetThreshold, null=True, blank=True, on_delete=models.SET_NULL, related_name="enforcements"
    )
    action = models.CharField(max_length=16, choices=BudgetAction.choices)
    throttle_share = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)
    basis = models.CharField(max_length=16, choices=ThresholdBasis.choices)
    period_start = models.DateField()
    period_end = models.DateField(help_text="Exclusive")
    # The level it fired at, so a raise of the budget or threshold can be recognised.
    limit_amount = models.DecimalField(**MONEY)
    reason = models.CharField(max_length=300)
    applied_at = models.DateTimeField()
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.CharField(max_length=24, choices=LiftReason.choices, blank=True)

    class Meta:
        ordering = ["-applied_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["threshold"], condition=Q(lifted_at__isnull=True), name="enforcement_one_open"
            ),
        ]
        indexes = [models.Index(fields=["lifted_at", "action"])]

    def __str__(self) -> str:
        return f"{self.budget_id} {self.action} since {self.applied_at:%Y-%m-%d %H:%M}"


class BudgetEvent(models.Model):
    """Every state change of a budget: when, the spend then, which threshold, what was applied/lifted."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="events")
    threshold = models.ForeignKey(
        BudgetThreshold, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    enforcement = models.ForeignKey(
        BudgetEnforcement, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    kind = models.CharField(max_length=16, choices=BudgetEventKind.choices)
    action = models.CharField(max_length=16, choices=BudgetAction.choices)
    threshold_label = models.CharField(max_length=200)
    basis = models.CharField(max_length=16, choices=ThresholdBasis.choices)
    period_start = models.DateField()
    period_end = models.DateField()
    currency = models.CharField(max_length=3)
    spend_billed = models.DecimalField(**MONEY)
    spend_estimated = models.DecimalField(**MONEY)
    forecast = models.DecimalField(**MONEY, null=True, blank=True)
    limit_amount = models.DecimalField(**MONEY)
    lift_reason = models.CharField(max_length=24, choices=LiftReason.choices, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["budget", "created_at"])]

    def __str__(self) -> str:
        return f"{self.budget_id} {self.kind} {self.action} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def spend_total(self):
        return self.spend_billed + self.spend_estimated


class BudgetForecast(models.Model):
    """The period-end forecast of a budget's spend with its 80 % interval and backtest error."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="forecasts")
    period_start = models.DateField()
    period_end = models.DateField()
    currency = models.CharField(max_length=3)
    method = models.CharField(max_length=32)
    point = models.DecimalField(**MONEY)
    lower = models.DecimalField(**MONEY)
    upper = models.DecimalField(**MONEY)
    spend_to_date = models.DecimalField(**MONEY)
    # Mean absolute percentage error of period-end forecasts made on this scope's past data.
    backtest_mape = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    # [{"day": "2026-10-01", "actual": "...", "forecast": "...", "lower": "...", "upper": "..."}]
    daily = models.JSONField(default=list, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["budget", "period_start"], name="forecast_one_per_period"),
        ]

    def __str__(self) -> str:
        return f"{self.budget_id} {self.period_start}: {self.point} [{self.lower}, {self.upper}]"
