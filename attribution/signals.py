"""Signals the attribution layer sends so that later steps (allocation, estimates, governance) can
follow an ingest without attribution importing them. Receivers enqueue their work
(`transaction.on_commit(lambda: task.delay(...))`); the one exception is mapping rules, which run
inline in the swap transaction so that no reader ever sees the period's rows unmapped."""

from django.dispatch import Signal

# Sent after a new version of (account, billing period) is swapped in, inside the swap's
# transaction. kwargs: account_id: int, billing_period_start: datetime.date, run_id: int,
# days: list[datetime.date] (the charge days the period touches).
period_ingested = Signal()

# Sent when an allocation does not reconcile (allocated + unallocated != billed, to the cent) for a
# (day, account, currency). kwargs: account_id, day, currency, column, billed, allocated.
allocation_conservation_failed = Signal()

# Sent when a billing period that the provider had marked final changes again.
# kwargs: account_id, billing_period_start, old_version, new_version.
period_restated_after_close = Signal()

# Sent by a service inside the transaction of every create, update or delete of a governed object
# (see attribution/audit.py); governance writes the AuditEvent. kwargs: actor (a user or None),
# action, object_type ("app.model"), object_id, object_repr, changes ({"before", "after"} or a
# summary), remote_addr.
audited_change = Signal()

# Sent when a sync or ingest fails permanently. kwargs: account_id, kind, error_kind, error.
sync_failed = Signal()

# Background work a service asks for. Services never import Celery tasks (tasks import services);
# each capability's receivers.py enqueues the task after the sender's transaction commits.
# kwargs: run_id (a BackgroundRun of kind rules_reapply).
rules_reapply_requested = Signal()
# kwargs: start, end (ISO datetimes of the minute buckets a usage batch touched).
usage_recorded = Signal()
# kwargs: ingest_run_id, sync_run_id, account_id, billing_period_start (ISO date), source_version,
# is_final: one synced period to ingest, then hand back to the sync's bookkeeping.
period_ingest_requested = Signal()
# kwargs: account_id, sync_run_id, trigger: a billing sync queued by a person (page, API).
account_sync_requested = Signal()
# kwargs: run_ids (pending ingest runs a person started: a retry or an uploaded file).
ingest_runs_requested = Signal()
