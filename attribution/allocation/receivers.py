"""Receivers of attribution signals that belong to allocation. Connected from AppConfig.ready().

Unlike the usual rule for period_ingested receivers (enqueue, do not work inline), the mapping
rules are applied inline: inside the ingest's swap transaction, so nobody ever reads the new
version of a period before its line items are mapped. It is one UPDATE ... FROM in SQL over the
period's rows, and only when a rule changes anything is DailyCost rebuilt again.
"""

from __future__ import annotations

from django.dispatch import receiver

from attribution.allocation import rule_tasks  # noqa: F401 - registers the re-apply task in workers
from attribution.allocation.rules import dimension_rules_apply
from attribution.signals import period_ingested


@receiver(period_ingested, dispatch_uid="attribution.allocation.dimension_rules_apply")
def dimension_rules_apply_on_ingest(
    sender, *, account_id: int, billing_period_start, run_id: int | None = None, **kwargs
) -> None:
    dimension_rules_apply(
        account_id=account_id, billing_period_start=billing_period_start, fresh_ingest=True, run_id=run_id
    )
