"""Signals the attribution layer sends so that later steps (allocation, estimates, governance) can
follow an ingest without attribution importing them. Receivers must only enqueue work
(`transaction.on_commit(lambda: task.delay(...))`), never do it inline."""

from django.dispatch import Signal

# Sent after a new version of (account, billing period) is swapped in, inside the swap's
# transaction. kwargs: account_id: int, billing_period_start: datetime.date, run_id: int,
# days: list[datetime.date] (the charge days the period touches).
period_ingested = Signal()
