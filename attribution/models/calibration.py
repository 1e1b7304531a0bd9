"""Calibration factors learned from estimate true-ups (see attribution/estimates/calibration.py)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from attribution.models.core import Deployment

FACTOR = {"max_digits": 12, "decimal_places": 6}
MONEY = {"max_digits": 24, "decimal_places": 10}


class EstimateCalibration(models.Model):
    """One learned correction factor for a deployment's estimates on one basis.

    Rows are never updated: each learning that changes the factor adds a row, so the rows of a
    deployment are its calibration history and the latest one (by `learned_at`) is in force.
    """

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="calibrations")
    basis = models.CharField(max_length=16, help_text="unit_cost or price_card")
    currency = models.CharField(max_length=3)
    factor = models.DecimalField(**FACTOR, help_text="billed / uncalibrated estimate, recency-weighted")
    learned_at = models.DateTimeField()
    window_first = models.DateField(help_text="First reconciled day the factor was learned from")
    window_last = models.DateField(help_text="Last reconciled day the factor was learned from")
    days_used = models.PositiveIntegerField()
    estimated = models.DecimalField(**MONEY, help_text="Uncalibrated estimates of the window")
    billed = models.DecimalField(**MONEY, help_text="Billed cost of the same cells")

    class Meta:
        ordering = ["deployment_id", "basis", "-learned_at", "-id"]
        indexes = [models.Index(fields=["deployment", "basis", "-learned_at"])]
        constraints = [models.CheckConstraint(condition=Q(factor__gt=0), name="estimatecalibration_positive")]

    def __str__(self) -> str:
        return f"{self.deployment_id} {self.basis} x{self.factor}"
