"""Celery tasks of attribution.allocation (thin: take ids, call services)."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone
from psycopg import OperationalError as PsycopgOperationalError

_TRANSIENT = (OperationalError, PsycopgOperationalError)

# --- Estimates (spend between bills) -------------------------------------------------------------

ESTIMATE_RECENT_DAYS = 3


@shared_task(
    name="attribution.allocation.tasks.estimates_refresh_recent",
    queue="rollup",
    acks_late=True,
    soft_time_limit=600,
    time_limit=660,
    autoretry_for=_TRANSIENT,
    retry_backoff=5,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=3,
)
def estimates_refresh_recent() -> dict:
    """Beat: re-estimate the last ESTIMATE_RECENT_DAYS UTC days (today included) from usage."""
    from attribution.allocation.estimates import estimates_refresh

    today = timezone.now().astimezone(dt.UTC).date()
    days = [today - dt.timedelta(days=offset) for offset in range(ESTIMATE_RECENT_DAYS)]
    return estimates_refresh(days=days).as_dict()


@shared_task(
    name="attribution.allocation.tasks.estimates_reconcile_task",
    queue="rollup",
    acks_late=True,
    soft_time_limit=600,
    time_limit=660,
    autoretry_for=_TRANSIENT,
    retry_backoff=5,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=5,
)
def estimates_reconcile_task(account_id: int, days: list[str]) -> int:
    """A bill landed for (account, days): billed replaces estimated there and the error is recorded."""
    from attribution.allocation.estimates import estimates_reconcile

    return estimates_reconcile(account_id=account_id, days=[dt.date.fromisoformat(day) for day in days])
