"""End to end through a real Celery worker process, the Redis broker and the django-db result backend."""

from __future__ import annotations

import uuid

import pytest
from django_celery_results.models import TaskResult

from config.tasks import heartbeat, ping
from tests.celery_worker import celery_worker_process, wait_for

pytestmark = [pytest.mark.celery_worker]


@pytest.fixture
def worker(transactional_db, tmp_path):
    """A real worker on the queues production uses; its log is kept for assertions."""
    log_path = tmp_path / "worker.log"
    with celery_worker_process(log_path) as process:
        yield process, log_path


def test_a_real_worker_runs_ping_and_stores_the_result_in_the_database(worker):
    process, log_path = worker
    marker = uuid.uuid4().hex
    async_result = ping.delay(marker)

    row = wait_for(
        lambda: TaskResult.objects.filter(task_id=async_result.id, status="SUCCESS").first(),
        what="the ping result",
        process=process,
        log_path=log_path,
    )
    assert row.task_name == "config.tasks.ping"
    assert row.result == f'"pong:{marker}"'  # JSON, as the result serializer is JSON only
    # The same result read back through Celery's own API and the django-db backend.
    assert async_result.get(timeout=5) == f"pong:{marker}"


def test_a_real_worker_runs_the_heartbeat(worker):
    process, log_path = worker
    async_result = heartbeat.delay()
    # heartbeat ignores its result (it runs every minute); the worker log is the evidence.
    line = wait_for(
        lambda: next(
            (
                text
                for text in log_path.read_text(errors="replace").splitlines()
                if f"config.tasks.heartbeat[{async_result.id}] succeeded" in text
            ),
            None,
        ),
        what="the heartbeat to succeed",
        process=process,
        log_path=log_path,
    )
    assert "succeeded" in line
    assert not TaskResult.objects.filter(task_id=async_result.id).exists()
