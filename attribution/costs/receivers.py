"""Warm the Overview's cache as soon as the tasks that change what it reads in bulk finish
(attribution.costs.tasks); the beat's warm-up every 30 s catches every other writer.

Connected from AttributionConfig.ready(). Celery's task_success fires in the worker once such a
task has returned (its writes committed), and once in eager mode too; the warm-up is enqueued then.
"""

from __future__ import annotations

from celery.signals import task_success

from attribution.allocation.tasks import allocation_days_task, allocation_run_task
from attribution.estimates.tasks import estimates_reconcile_task, estimates_refresh_recent
from attribution.ingest.tasks import ingest_run_execute_task, rollup_daily_cost_task
from attribution.usage.tasks import usage_rollup_recent, usage_rollup_task

# The tasks that finish an ingest, an allocation, the estimates or the usage they are made from.
# Named through the task objects, not as text: a renamed task (or module) then still warms the page,
# and a removed one fails at start-up instead of silently never warming it again.
WARM_AFTER = frozenset(
    task.name
    for task in (
        ingest_run_execute_task,
        rollup_daily_cost_task,
        allocation_run_task,
        allocation_days_task,
        estimates_refresh_recent,
        estimates_reconcile_task,
        usage_rollup_task,
        usage_rollup_recent,
    )
)


@task_success.connect(dispatch_uid="attribution.costs.overview_warm_after_writes")
def overview_warm_after_writes(sender=None, **kwargs) -> None:
    if getattr(sender, "name", None) not in WARM_AFTER:
        return
    from attribution.costs.tasks import overview_warm_task

    overview_warm_task.delay()
