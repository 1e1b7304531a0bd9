"""Celery tasks of governance: thin, JSON arguments, idempotent (evaluation is)."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.core.cache import cache
from django.db import OperationalError
from psycopg import OperationalError as PsycopgOperationalError

from governance import enforcement

_TRANSIENT = (OperationalError, PsycopgOperationalError)
FORECAST_AFTER_SPEND_SECONDS = 600
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


@shared_task(name="governance.tasks.spend_landed_task", soft_time_limit=240, time_limit=250, **_RETRY)
def spend_landed_task(days: list[str] | None = None, refresh_estimates: bool = False) -> dict:
    """Spend landed (gateway usage, or a bill): estimate those days first when asked, then evaluate.
    A bill re-forecasts every budget; usage (every few seconds) only forecasts older than an hour."""
    if refresh_estimates and days:
        from attribution.estimates.services import estimates_refresh

        estimates_refresh(days=[dt.date.fromisoformat(day) for day in days])
    result = budgets_evaluate_all.run()
    # Forecasts take longer (a model fit per budget): their own task, so enforcement never waits,
    # and at most one per FORECAST_AFTER_SPEND_SECONDS from spend landing (usage lands every few
    # seconds; a queue of forecast runs would hold the workers that enforcement needs). The hourly
    # beat run covers the rest.
    if cache.add("governance:forecast-after-spend", True, timeout=FORECAST_AFTER_SPEND_SECONDS):
        budgets_forecast_all.delay(3600 if refresh_estimates else None)
    return result


@shared_task(name="governance.tasks.budgets_forecast_all", soft_time_limit=900, time_limit=960, **_RETRY)
def budgets_forecast_all(older_than_seconds: int | None = None) -> int:
    """Beat, hourly: every active budget's period-end forecast (or those older than given)."""
    from governance.forecast_services import budgets_forecast_refresh

    older_than = dt.timedelta(seconds=older_than_seconds) if older_than_seconds else None
    return budgets_forecast_refresh(older_than=older_than)


@shared_task(
    bind=True,
    name="governance.tasks.alert_delivery_send_task",
    soft_time_limit=60,
    time_limit=70,
    max_retries=20,
)
def alert_delivery_send_task(self, delivery_id: int) -> str:
    """One attempt; the service decides whether and when to try again (backoff), the queue waits."""
    from governance.alert_services import alert_delivery_send

    outcome = alert_delivery_send(delivery_id=delivery_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.state


@shared_task(name="governance.tasks.anomalies_detect_task", soft_time_limit=600, time_limit=660, **_RETRY)
def anomalies_detect_task(day: str | None = None) -> int:
    """Beat: anomalies of `day` (default yesterday and today, UTC); each is raised once."""
    from governance.anomalies import anomalies_detect

    today = dt.datetime.now(dt.UTC).date()
    days = [dt.date.fromisoformat(day)] if day else [today - dt.timedelta(days=1), today]
    return sum(len(anomalies_detect(day=item)) for item in days)
