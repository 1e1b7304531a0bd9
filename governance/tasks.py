"""Celery tasks of governance: thin, JSON arguments, idempotent (evaluation is)."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import OperationalError
from psycopg import OperationalError as PsycopgOperationalError

from governance import enforcement

_TRANSIENT = (OperationalError, PsycopgOperationalError)
_RETRY = {
    "autoretry_for": _TRANSIENT,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(name="governance.tasks.budgets_evaluate_all", soft_time_limit=50, time_limit=55, **_RETRY)
def budgets_evaluate_all() -> dict:
    """Beat, every minute: every budget on the spend known now (estimates included)."""
    evaluations = enforcement.budgets_evaluate()
    return {
        "budgets": len(evaluations),
        "applied": sum(len(item.applied) for item in evaluations),
        "lifted": sum(len(item.lifted) for item in evaluations),
    }


@shared_task(name="governance.tasks.budgets_evaluate_task", soft_time_limit=120, time_limit=130, **_RETRY)
def budgets_evaluate_task(budget_ids: list[int] | None = None) -> dict:
    evaluations = enforcement.budgets_evaluate(budget_ids=budget_ids)
    return {"budgets": len(evaluations), "applied": sum(len(item.applied) for item in evaluations)}


@shared_task(name="governance.tasks.spend_landed_task", soft_time_limit=120, time_limit=130, **_RETRY)
def spend_landed_task(days: list[str] | None = None, refresh_estimates: bool = False) -> dict:
    """Spend landed (gateway usage, or a bill): estimate those days first when asked, then evaluate."""
    if refresh_estimates and days:
        from attribution.estimates.services import estimates_refresh

        estimates_refresh(days=[dt.date.fromisoformat(day) for day in days])
    return budgets_evaluate_all.run()
