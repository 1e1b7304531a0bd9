"""Background work made visible: cloud syncs, billing period versions, and other long runs."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from attribution.models.core import CloudAccount


class RunState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class SyncKind(models.TextChoices):
    BILLING = "billing", "Billing exports"
    USAGE = "usage", "Usage metrics"
    CONNECTION_TEST = "connection_test", "Connection test"


class SyncErrorKind(models.TextChoices):
    NONE = "", "None"
    AUTHENTICATION = "authentication", "Authentication failed"
    PERMISSION = "permission", "Missing permission"
    NOT_FOUND = "not_found", "Bucket / table / container not found"
    EMPTY = "empty", "Export is empty"
    TRANSIENT = "transient", "Transient (throttling, 5xx, timeout)"
    INVALID = "invalid", "Invalid data or settings"


class SyncRun(models.Model):
    """One sync of one account with its cloud: discovers periods, fans out ingest runs."""

    account = models.ForeignKey(CloudAccount, on_delete=models.CASCADE, related_name="sync_runs")
    kind = models.CharField(max_length=16, choices=SyncKind.choices, default=SyncKind.BILLING)
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.PENDING)
    trigger = models.CharField(max_length=16, default="schedule", help_text="schedule, manual, api")
    periods_found = models.PositiveIntegerField(default=0)
    periods_changed = models.PositiveIntegerField(default=0)
    periods_skipped = models.PositiveIntegerField(default=0)
    ingest_run_ids = models.JSONField(default=list, blank=True)
    usage_records = models.BigIntegerField(default=0)
    progress_message = models.CharField(max_length=300, blank=True)
    error_kind = models.CharField(max_length=16, choices=SyncErrorKind.choices, blank=True)
    error = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["account", "created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "kind"], condition=Q(state="running"), name="syncrun_one_running_per_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account.slug} {self.kind} sync #{self.pk} ({self.state})"


class BillingPeriodVersion(models.Model):
    """What we last saw of (account, billing period) at the source, to detect new versions,
    know when a period is final, and notice a restatement after close."""

    account = models.ForeignKey(CloudAccount, on_delete=models.CASCADE, related_name="period_versions")
    billing_period_start = models.DateField()
    # Provider's version marker: AWS execution/assembly id, a hash of object ETags, GCP export_time
    # watermark, Azure export run id.
    source_version = models.CharField(max_length=300, blank=True)
    watermark = models.DateTimeField(null=True, blank=True, help_text="Latest export_time ingested (GCP)")
    is_final = models.BooleanField(default=False)
    finalized_at = models.DateTimeField(null=True, blank=True)
    restated_after_close = models.BooleanField(default=False)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["account", "-billing_period_start"]
        constraints = [
            models.UniqueConstraint(fields=["account", "billing_period_start"], name="periodversion_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.account.slug} {self.billing_period_start:%Y-%m} {self.source_version[:24]}"


class BackgroundRun(models.Model):
    """Long work started from the UI or API (re-applying mapping rules to history, an allocation),
    with progress the UI can poll."""

    kind = models.CharField(max_length=32)
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.PENDING)
    params = models.JSONField(default=dict, blank=True)
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.state})"
