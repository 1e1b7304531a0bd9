"""Celery tasks of attribution.allocation (thin: take ids and ISO dates, call services).

Retries only what may succeed next time: a dropped database connection. A rule that cannot be
applied (AllocationRuleError, e.g. fixed shares not totalling 100%) is reported in the result and
the log; retrying would fail the same way until someone fixes the rule.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.db import OperationalError
from psycopg import OperationalError as PsycopgOperationalError

from attribution.allocation.services import (
    AllocationRuleError,
    allocation_accounts_for_days,
    allocation_run,
    allocation_statistics_refresh,
)
from attribution.costs.services import unit_costs_rebuild
from attribution.currency.services import allocated_costs_convert
from attribution.estimates import services as estimates

logger = logging.getLogger(__name__)

_TRANSIENT = (OperationalError, PsycopgOperationalError)
_RETRY = {
    "autoretry_for": _TRANSIENT,
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
}


def _dates(days: list[str] | None) -> list[dt.date] | None:
    return None if days is None else [dt.date.fromisoformat(day) for day in days]


def _allocate(account_id: int, days: list[dt.date] | None) -> dict:
    try:
        result = allocation_run(account_id=account_id, days=days)
    except AllocationRuleError as error:
        logger.warning("allocation of account %s not run: %s", account_id, error.message)
        return {"account_id": account_id, "error": error.message}
    if result.days:
        # Reporting-currency figures with the rate of each charge date, recorded on the rows.
        allocated_costs_convert(account_id=account_id, days=result.days)
        estimates.estimates_reconcile(days=result.days, account_id=account_id)
    return {
        "account_id": account_id,
        "days": [day.isoformat() for day in result.days],
        "rows_written": result.rows_written,
        "violations": len(result.violations),
        "seconds": round(result.seconds, 3),
    }


@shared_task(
    name="attribution.allocation.tasks.allocation_run_task",
    queue="rollup",
    acks_late=True,
    soft_time_limit=1800,
    time_limit=1900,
    **_RETRY,
)
def allocation_run_task(account_id: int, days: list[str] | None = None) -> dict:
    """Allocate one account for `days` (ISO dates; None = every day it has), then unit costs."""
    outcome = _allocate(account_id, _dates(days))
    if outcome.get("days"):
        unit_costs_rebuild(days=_dates(outcome["days"]))
        allocation_statistics_refresh()
    return outcome


@shared_task(
    name="attribution.allocation.tasks.allocation_days_task",
    queue="rollup",
    acks_late=True,
    soft_time_limit=1800,
    time_limit=1900,
    **_RETRY,
)
def allocation_days_task(account_ids: list[int] | None, days: list[str]) -> dict:
    """Re-allocate `days` for the given accounts (None = every account with cost on those days).

    For the usage pipeline: usage of a day that arrives after its bill changes how shared pools
    split, so it enqueues this with the days it rolled up.
    """
    dates = sorted(set(_dates(days) or []))
    if not dates:
        return {"accounts": []}
    accounts = account_ids if account_ids is not None else allocation_accounts_for_days(days=dates)
    outcomes = [_allocate(account_id, dates) for account_id in accounts]
    unit_costs_rebuild(days=dates)
    allocation_statistics_refresh()
    return {"accounts": outcomes}
