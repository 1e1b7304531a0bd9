"""Receivers of attribution signals that belong to allocation. Connected from AppConfig.ready().

Unlike the usual rule for period_ingested receivers (enqueue, do not work inline), the mapping
rules are applied inline: inside the ingest's swap transaction, so nobody ever reads the new
version of a period before its line items are mapped. It is one UPDATE ... FROM in SQL over the
period's rows, and only when a rule changes anything is DailyCost rebuilt again.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver

from attribution.mapping.services import dimension_rules_apply
from attribution.mapping.tasks import rules_reapply_task
from attribution.signals import period_ingested, rules_reapply_requested


@receiver(period_ingested, dispatch_uid="attribution.allocation.dimension_rules_apply")
def dimension_rules_apply_on_ingest(
    sender, *, account_id: int, billing_period_start, run_id: int | None = None, **kwargs
) -> None:
    dimension_rules_apply(
        account_id=account_id, billing_period_start=billing_period_start, fresh_ingest=True, run_id=run_id
    )


@receiver(rules_reapply_requested, dispatch_uid="attribution.mapping.rules_reapply_enqueue")
def rules_reapply_enqueue(sender, *, run_id: int, **kwargs) -> None:
    transaction.on_commit(lambda: rules_reapply_task.delay(run_id))
