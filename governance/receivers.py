"""Turns attribution's signals into governance Alerts. A failure that matters to a person is an
alert they can see and acknowledge, not a log line."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from attribution import signals
from governance.choices import AlertKind, Severity
from governance.services import alert_raise


@receiver(signals.allocation_conservation_failed, dispatch_uid="governance.conservation_alert")
def on_allocation_conservation_failed(sender: Any, **kwargs: Any) -> None:
    alert_raise(
        kind=AlertKind.CONSERVATION,
        severity=Severity.CRITICAL,
        dedup_key=(
            f"conservation:{kwargs['account_id']}:{kwargs['day']}:{kwargs['currency']}:{kwargs['column']}"
        ),
        message=(
            f"Allocation does not reconcile for account {kwargs['account_id']} on {kwargs['day']} "
            f"({kwargs['column']}, {kwargs['currency']}): billed {kwargs['billed']}, "
            f"allocated + unallocated {kwargs['allocated']}."
        ),
        details={key: str(value) for key, value in kwargs.items() if key != "signal"},
    )


@receiver(signals.period_restated_after_close, dispatch_uid="governance.restatement_alert")
def on_period_restated_after_close(sender: Any, **kwargs: Any) -> None:
    period = kwargs["billing_period_start"]
    alert_raise(
        kind=AlertKind.RESTATEMENT,
        severity=Severity.WARNING,
        dedup_key=f"restated:{kwargs['account_id']}:{period}:{kwargs['new_version']}"[:200],
        message=(
            f"Billing period {period:%Y-%m} of account {kwargs['account_id']} changed after the provider "
            f"marked it final (version {kwargs['old_version']} -> {kwargs['new_version']})."
        ),
        details={key: str(value) for key, value in kwargs.items() if key != "signal"},
    )


@receiver(signals.sync_failed, dispatch_uid="governance.sync_failed_alert")
def on_sync_failed(sender: Any, **kwargs: Any) -> None:
    alert_raise(
        kind=AlertKind.INGEST_FAILED,
        severity=Severity.CRITICAL,
        dedup_key=f"sync:{kwargs['account_id']}:{kwargs['kind']}:{kwargs['error_kind']}"[:200],
        message=f"{kwargs['kind']} sync of account {kwargs['account_id']} failed ({kwargs['error_kind']}): "
        f"{kwargs['error']}",
        details={key: str(value) for key, value in kwargs.items() if key != "signal"},
    )
