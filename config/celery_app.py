import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("inferensys")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Task modules inside subject packages, which autodiscovery (app.tasks only) does not find.
app.conf.include = [
    "attribution.ingest.tasks",
    "attribution.connectors.tasks",
    "attribution.mapping.tasks",
    "attribution.allocation.tasks",
    "attribution.estimates.tasks",
    "attribution.usage.tasks",
    "attribution.costs.tasks",
]

# Every periodic schedule lives here, in one place. Each expires before its next run would start,
# so a backlog after an outage does not replay a burst of stale runs.
app.conf.beat_schedule = {
    # Usage minute buckets -> hourly and daily rollups for the recent window.
    "usage-rollup-recent": {
        "task": "attribution.usage.tasks.usage_rollup_recent",
        "schedule": 300.0,
        "options": {"expires": 240, "queue": "rollup"},
    },
    # Each account with sync enabled is synced when its own cadence (sync_interval_minutes) is due.
    "cloud-sync-due-accounts": {
        "task": "attribution.connectors.tasks.sync_due_accounts",
        "schedule": 300.0,
        "options": {"expires": 240},
    },
    # Spend estimated from usage for days whose bill has not landed yet.
    "estimate-recent-spend": {
        "task": "attribution.allocation.tasks.estimates_refresh_recent",
        "schedule": 900.0,
        "options": {"expires": 840, "queue": "rollup"},
    },
    # Dead ingest runs (their process died) are reaped or retried, orphan line item tables dropped,
    # pending runs whose message was lost enqueued again (attribution/ingest/sweep.py).
    "storage-sweep": {
        "task": "attribution.tasks.storage_sweep_task",
        "schedule": 60.0,
        "options": {"expires": 50, "queue": "default"},
    },
    # The same, and tag sets no line item references are deleted (reads every line item: hourly).
    "storage-sweep-tag-sets": {
        "task": "attribution.tasks.storage_sweep_task",
        "schedule": 3600.0,
        "kwargs": {"collect_tag_sets": True},
        "options": {"expires": 3000, "queue": "default"},
    },
    # Routing: probe deployments, advance gradual restores, re-evaluate weights and publish. A
    # failing deployment is drained within one cycle.
    "routing-evaluation-cycle": {
        "task": "routing.evaluation_cycle",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    # Gateways that have not applied the latest document within the deadline raise an alert.
    "routing-gateways-lag-check": {
        "task": "routing.gateways_lag_check",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
    # Budgets on the spend known now (estimates included); spend landing also triggers it at once.
    "budgets-evaluate": {
        "task": "governance.tasks.budgets_evaluate_all",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
    "budgets-forecast": {
        "task": "governance.tasks.budgets_forecast_all",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    # Daily anomaly detection over yesterday (UTC) per team, model, provider and deployment.
    "anomalies-detect": {
        "task": "governance.tasks.anomalies_detect_task",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    # The Overview's recent pages rendered again after any write (a rename, an alert, an edit in
    # settings): one query when nothing changed. Bulk-writing tasks also enqueue it as they finish.
    "overview-warm": {
        "task": "attribution.costs.tasks.overview_warm_task",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "heartbeat": {
        "task": "config.tasks.heartbeat",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
}


@worker_ready.connect
def _storage_sweep_on_start(sender, **_kwargs) -> None:
    """A worker that starts (perhaps after being killed) sweeps at once: the runs it was executing
    are retried now rather than at the next beat."""
    sender.app.send_task("attribution.tasks.storage_sweep_task", queue="default")
