"""The tasks after which the Overview is warmed are real, registered tasks (a task renamed without
updating the list would otherwise never warm the page again, and nothing would say so), and the
beat warms it after every other write."""

from __future__ import annotations

import pytest
from celery.signals import task_success

from attribution.allocation.tasks import allocation_days_task
from attribution.costs import receivers
from attribution.costs.tasks import overview_warm_task
from attribution.usage.tasks import usage_rollup_recent
from config.celery_app import app


def test_every_task_that_warms_the_overview_is_registered_in_the_celery_app():
    registered = set(app.tasks)
    assert len(receivers.WARM_AFTER) == 8
    assert receivers.WARM_AFTER <= registered, f"not registered: {receivers.WARM_AFTER - registered}"


@pytest.fixture
def warm_ups(monkeypatch) -> list[tuple]:
    """The warm-ups enqueued (recorded instead of sent: the broker is not what is checked here)."""
    enqueued: list[tuple] = []
    monkeypatch.setattr(overview_warm_task, "delay", lambda *args: enqueued.append(args))
    return enqueued


def test_a_writing_task_that_succeeds_enqueues_the_warm_up(warm_ups):
    for task in (allocation_days_task, usage_rollup_recent):
        task_success.send(sender=task, result={})
    assert warm_ups == [(), ()]


def test_other_tasks_and_the_warm_up_itself_enqueue_nothing(warm_ups):
    task_success.send(sender=overview_warm_task, result={})
    task_success.send(sender=app.tasks["attribution.connectors.tasks.sync_due_accounts"], result=None)
    assert warm_ups == []


def test_the_beat_warms_the_overview_after_any_write_within_half_a_minute():
    """Writes outside the tasks above (a rename, an alert, an edit in settings) are caught by the beat."""
    entries = [entry for entry in app.conf.beat_schedule.values() if entry["task"] == overview_warm_task.name]
    assert len(entries) == 1
    assert entries[0]["schedule"] <= 30
    assert 0 < entries[0]["options"]["expires"] < entries[0]["schedule"]
