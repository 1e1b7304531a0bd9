"""Turns attribution's signals into governance Alerts. A failure that matters to a person is an
alert they can see and acknowledge, not a log line."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from celery.signals import task_success
from django.db import transaction
from django.dispatch import receiver

from attribution import signals
from attribution.design import money_text
from governance.choices import AlertKind, Severity
from governance.services import alert_raise, audit_event_write


@receiver(signals.allocation_conservation_failed, dispatch_uid="governance.conservation_alert")
def on_allocation_conservation_failed(sender: Any, **kwargs: Any) -> None:
    currency = kwargs["currency"]
    billed, allocated = Decimal(str(kwargs["billed"])), Decimal(str(kwargs["allocated"]))
    # Rounded to the cent the two can read the same: the difference is given exactly.
    off_by = (billed - allocated).normalize()
    alert_raise(
        kind=AlertKind.CONSERVATION,
        severity=Severity.CRITICAL,
        dedup_key=(
            f"conservation:{kwargs['account_id']}:{kwargs['day']}:{kwargs['currency']}:{kwargs['column']}"
        ),
        message=(
            f"Allocation does not reconcile for account {kwargs['account_id']} on {kwargs['day']} "
            f"({kwargs['column']}, {currency}): billed {money_text(billed, currency)}, "
            f"allocated + unallocated {money_text(allocated, currency)} (off by {off_by:f} {currency})."
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


# --- Spend landing wakes the budget evaluation --------------------------------------------------


@receiver(signals.period_ingested, dispatch_uid="governance.budgets_on_bill")
def on_period_ingested(sender: Any, **kwargs: Any) -> None:
    """A bill landed: billed spend replaces estimates for its days; evaluate after the swap commits."""
    from governance.tasks import spend_landed_task

    transaction.on_commit(lambda: spend_landed_task.delay(None, False))


USAGE_ROLLUP_TASK = "attribution.usage.tasks.usage_rollup_task"


@task_success.connect(dispatch_uid="governance.budgets_on_usage")
def on_usage_rolled_up(sender: Any = None, **kwargs: Any) -> None:
    """Gateway usage was rolled up (in a worker, seconds after the batch): estimate those UTC days
    and evaluate, so a runaway team is acted on in seconds, not at the next bill. Attribution does
    not know about budgets; this listens to its task finishing instead of being called by it."""
    if sender is None or getattr(sender, "name", "") != USAGE_ROLLUP_TASK:
        return
    from governance.tasks import spend_landed_task

    args = list(getattr(sender.request, "args", None) or [])
    try:
        start, end = (dt.datetime.fromisoformat(value).astimezone(dt.UTC).date() for value in args[:2])
    except (TypeError, ValueError):
        start = end = dt.datetime.now(dt.UTC).date()
    days = [(start + dt.timedelta(days=offset)).isoformat() for offset in range((end - start).days + 1)]
    spend_landed_task.delay(days, True)


def audit_event_on_change(
    sender: Any,
    *,
    actor: Any,
    action: str,
    object_type: str,
    object_id: str,
    object_repr: str,
    changes: dict,
    remote_addr: str | None = None,
    **kwargs: Any,
) -> None:
    """attribution.signals.audited_change -> one AuditEvent, written in the sender's transaction.

    Connected explicitly in GovernanceConfig.ready(): a governed change that is not audited is a
    bug, so the wiring is in plain sight rather than left to an import side effect."""
    audit_event_write(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr,
        changes=changes,
        remote_addr=remote_addr,
    )
