"""Deliveries of alerts to channels: one row per (alert, channel), with its attempts."""

from __future__ import annotations

from django.db import models

from governance.choices import DeliveryState
from governance.models.base import Alert, NotificationChannel


class AlertDelivery(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status = models.PositiveIntegerField(null=True, blank=True, help_text="HTTP status of the last try")
    last_error = models.TextField(blank=True)
    # [{"at": iso, "status": int|null, "error": str}]
    log = models.JSONField(default=list, blank=True)
    is_test = models.BooleanField(default=False)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "channel"],
                condition=models.Q(is_test=False),
                name="delivery_once_per_channel",
            )
        ]

    def __str__(self) -> str:
        return f"alert {self.alert_id} -> {self.channel_id}: {self.state}"
