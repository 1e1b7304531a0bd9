"""Usage rollups and idempotent usage batches from gateways."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from attribution.models.core import Deployment, ScopedQuerySet, ServedModel, Team


class UsageBatch(models.Model):
    """One batch a gateway posted; the (reporter, batch_id) pair makes a retried batch count once."""

    reporter = models.CharField(max_length=100)
    batch_id = models.CharField(max_length=100)
    payload_sha256 = models.CharField(max_length=64)
    records = models.PositiveIntegerField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["reporter", "batch_id"], name="usagebatch_unique_per_reporter"),
        ]

    def __str__(self) -> str:
        return f"{self.reporter}/{self.batch_id} ({self.records} records)"


class _UsageRollup(models.Model):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    model = models.ForeignKey(ServedModel, on_delete=models.CASCADE, related_name="+")
    requests = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    gpu_seconds = models.DecimalField(max_digits=24, decimal_places=3, default=0)
    latency_ms_sum = models.FloatField(default=0)
    # Same buckets as UsageRecord.latency_histogram (LATENCY_BUCKET_BOUNDS_MS + overflow).
    latency_histogram = models.JSONField(default=list, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        abstract = True


class UsageHourly(_UsageRollup):
    """Usage per hour × deployment × team × model, rebuilt in SQL from UsageRecord."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "deployment", "team", "model"],
                nulls_distinct=False,
                name="usagehourly_unique",
            ),
        ]
        indexes = [models.Index(fields=["hour"]), models.Index(fields=["deployment", "hour"])]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 deployment {self.deployment_id}"


class UsageDaily(_UsageRollup):
    """Usage per UTC day × deployment × team × model: what allocation and unit costs read."""

    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "deployment", "team", "model"], nulls_distinct=False, name="usagedaily_unique"
            ),
            models.CheckConstraint(condition=Q(requests__gte=0), name="usagedaily_requests_nonnegative"),
        ]
        indexes = [models.Index(fields=["day"]), models.Index(fields=["deployment", "day"])]

    def __str__(self) -> str:
        return f"{self.day} deployment {self.deployment_id}"
