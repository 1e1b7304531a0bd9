"""Celery task that re-applies the dimension rules to history (thin: takes the run id).

It lives beside rules.py rather than in allocation/tasks.py so that the receivers module, imported
from AppConfig.ready(), registers it in every worker.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from psycopg import OperationalError as PsycopgOperationalError

from attribution.allocation.tasks import allocation_run_task
from attribution.choices import IngestState
from attribution.mapping import services as rules
from attribution.models import IngestRun, RunState


@shared_task(
    name="attribution.allocation.rule_tasks.rules_reapply_task",
    queue="rollup",
    acks_late=True,
    soft_time_limit=3 * 3600,
    time_limit=3 * 3600 + 300,
    # Only a dropped connection before the claim is worth retrying: after the claim the run is
    # no longer pending and a retry would do nothing; the failure is on the run row.
    autoretry_for=(OperationalError, PsycopgOperationalError),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=3,
)
def rules_reapply_task(run_id: int) -> dict:
    run = rules.rules_reapply_execute(run_id=run_id)
    if run.state == RunState.SUCCEEDED:
        # Re-mapping moved cost between teams, models and deployments: the stored allocation of
        # every account with current billing data is recomputed from the new mapping.
        for account_id in (
            IngestRun.objects.filter(state=IngestState.SUCCEEDED)
            .values_list("account_id", flat=True)
            .distinct()
        ):
            allocation_run_task.delay(account_id, None)
    return {"run_id": run.pk, "state": run.state, "done": run.progress_done, "total": run.progress_total}
