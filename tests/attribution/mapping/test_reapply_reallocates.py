"""Re-applying mapping rules to history re-runs allocation for every account with billing data."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
import redis
from django.conf import settings

from attribution.mapping.tasks import rules_reapply_task
from attribution.models import BackgroundRun, IngestRun
from config.celery_app import app
from tests.factories import CloudAccountFactory

pytestmark = pytest.mark.django_db


def _queued_allocations() -> list[list]:
    """Allocation tasks waiting in the rollup queue of the real Redis broker (message protocol 2)."""
    broker = redis.Redis.from_url(str(settings.CELERY_BROKER_URL))
    queued = []
    for raw in broker.lrange("rollup", 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == "attribution.allocation.tasks.allocation_run_task":
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            queued.append(args)
    return queued


def test_a_finished_reapply_enqueues_allocation_for_each_account_with_current_billing():
    app.control.purge()
    billed, unbilled = CloudAccountFactory(slug="aws-prod"), CloudAccountFactory(slug="gcp-empty")
    IngestRun.objects.create(
        account=billed,
        billing_period_start=dt.date(2026, 10, 1),
        billing_period_end=dt.date(2026, 11, 1),
        state="succeeded",
    )
    run = BackgroundRun.objects.create(kind="rules_reapply")

    outcome = rules_reapply_task(run.pk)

    assert outcome["state"] == "succeeded"
    assert _queued_allocations() == [[billed.pk, None]]
    assert unbilled.pk not in {args[0] for args in _queued_allocations()}
    app.control.purge()
