"""End to end through a real Celery worker process, the Redis broker and the django-db result backend."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django_celery_results.models import TaskResult

from config.tasks import heartbeat, ping

pytestmark = [pytest.mark.celery_worker]

ROOT = Path(__file__).resolve().parents[1]
CELERY = ROOT / ".venv" / "bin" / "celery"
TIMEOUT_SECONDS = 60


def database_url_for_the_test_database() -> str:
    """The URL of the database this test runs in (test_<name>), so the worker writes where we read."""
    db = settings.DATABASES["default"]
    user = quote(db.get("USER") or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    # An embedded server is reached through a socket directory: percent-encode it as the host.
    host = quote(db.get("HOST") or "", safe="")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


@pytest.fixture
def worker(transactional_db, tmp_path):
    """A real worker on the queues production uses; its log is kept for assertions."""
    broker_url = str(settings.CELERY_BROKER_URL)
    if not broker_url.startswith("redis://"):
        pytest.fail(f"This test needs Redis as the broker (CELERY_BROKER_URL), not {broker_url!r}.")
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for_the_test_database(),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    hostname = f"test-{uuid.uuid4().hex[:8]}@%h"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(CELERY),
                "-A",
                "config",
                "worker",
                "-Q",
                "default,ingest,rollup",
                "--pool=solo",
                "-l",
                "info",
                "--without-mingle",
                "--without-gossip",
                "-n",
                hostname,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process, log_path
    finally:
        # Warm shutdown first; the worker must be gone before pytest-django drops the test database.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def wait_for(condition, *, what: str, process: subprocess.Popen, log_path: Path):
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process.poll() is not None:
            pytest.fail(f"The worker exited with {process.returncode} before {what}:\n{log_path.read_text()}")
        time.sleep(0.2)
    pytest.fail(f"Timed out after {TIMEOUT_SECONDS}s waiting for {what}. Worker log:\n{log_path.read_text()}")


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
