"""Leases: a shared allowance handed out to gateway replicas in grants, so a hard limit holds across
any number of them (see the README's lease protocol)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from governance.choices import LeaseUnit
from governance.models.base import MONEY, Budget, Quota


class LeasePool(models.Model):
    """The allowance of one budget period or one quota window. Every grant locks this row
    (SELECT ... FOR UPDATE), so grants are serialised per pool and never sum past `limit`."""

    budget = models.ForeignKey(Budget, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    quota = models.ForeignKey(Quota, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    unit = models.CharField(max_length=16, choices=LeaseUnit.choices)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    # Reported as used by gateways when they renew or return a lease.
    consumed = models.DecimalField(**MONEY, default=0)
    # Sum of the grants of open (not returned, not expired) leases.
    outstanding = models.DecimalField(**MONEY, default=0)
    granted_total = models.DecimalField(**MONEY, default=0)
    # Budget pools: the scope's spend (billed + estimated) at the last evaluation.
    spend_known = models.DecimalField(**MONEY, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["budget", "window_start"], name="leasepool_budget_window"),
            models.UniqueConstraint(fields=["quota", "window_start"], name="leasepool_quota_window"),
            models.CheckConstraint(
                condition=Q(budget__isnull=False, quota__isnull=True)
                | Q(budget__isnull=True, quota__isnull=False),
                name="leasepool_one_scope",
            ),
            models.CheckConstraint(condition=Q(outstanding__gte=0), name="leasepool_outstanding_nonnegative"),
        ]

    def __str__(self) -> str:
        scope = f"budget {self.budget_id}" if self.budget_id else f"quota {self.quota_id}"
        return f"{scope} from {self.window_start:%Y-%m-%d %H:%M}"


class Lease(models.Model):
    """One grant to one gateway; open until returned (renewal) or expired."""

    pool = models.ForeignKey(LeasePool, on_delete=models.CASCADE, related_name="leases")
    holder = models.CharField(max_length=200, help_text="gateway:<slug>, or the user that asked")
    requested = models.DecimalField(**MONEY)
    granted = models.DecimalField(**MONEY)
    used = models.DecimalField(**MONEY, null=True, blank=True)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["pool", "expires_at"], condition=Q(closed_at__isnull=True), name="lease_open"
            )
        ]
        constraints = [models.CheckConstraint(condition=Q(granted__gte=0), name="lease_granted_nonnegative")]

    def __str__(self) -> str:
        return f"lease {self.pk}: {self.granted} to {self.holder}"
