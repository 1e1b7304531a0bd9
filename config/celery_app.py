import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("inferensys")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Every periodic schedule lives here, in one place. Each expires before its next run would start,
# so a backlog after an outage does not replay a burst of stale runs.
app.conf.beat_schedule = {
    "refresh-usage-rollups": {
        "task": "attribution.tasks.rollup_recent_usage",
        "schedule": 300.0,
        "options": {"expires": 240, "queue": "rollup"},
    },
    "heartbeat": {
        "task": "config.tasks.heartbeat",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
}
