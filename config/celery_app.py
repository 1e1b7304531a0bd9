import os

from celery import Celery

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
    # Budgets on the spend known now (estimates included); spend landing also triggers it at once.
    "budgets-evaluate": {
        "task": "governance.tasks.budgets_evaluate_all",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
    "heartbeat": {
        "task": "config.tasks.heartbeat",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
}
