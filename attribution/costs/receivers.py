"""Warm the Overview's cache after the tasks that change what it reads (attribution.costs.tasks).

Connected from AttributionConfig.ready(). Celery's task_success fires in the worker once such a
task has returned (its writes committed), and once in eager mode too; the warm-up is enqueued then.
"""

from __future__ import annotations

from celery.signals import task_success

# The tasks that finish an ingest, an allocation, the estimates or the usage they are made from.
WARM_AFTER = frozenset(
    {
        "attribution.tasks.ingest_run_execute_task",
        "attribution.tasks.rollup_daily_cost_task",
        "attribution.allocation.tasks.allocation_run_task",
        "attribution.allocation.tasks.allocation_days_task",
        "attribution.allocation.tasks.estimates_refresh_recent",
        "attribution.allocation.tasks.estimates_reconcile_task",
        "attribution.usage.tasks.usage_rollup_task",
        "attribution.usage.tasks.usage_rollup_recent",
    }
)


@task_success.connect(dispatch_uid="attribution.costs.overview_warm_after_writes")
def overview_warm_after_writes(sender=None, **kwargs) -> None:
    if getattr(sender, "name", None) not in WARM_AFTER:
        return
    from attribution.costs.tasks import overview_warm_task

    overview_warm_task.delay()
