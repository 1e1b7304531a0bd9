"""A real Celery worker process for tests whose behaviour depends on one (Redis broker, test DB)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

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


@contextmanager
def celery_worker_process(log_path: Path, *, name: str = "test") -> Iterator[subprocess.Popen]:
    """Start a worker on the queues production uses; stop it (warm, then hard) on exit.

    Tasks other tests enqueued without a worker are purged first, so the worker runs only what this
    test sends. The worker must be gone before pytest-django drops the test database."""
    from config.celery_app import app

    broker_url = str(settings.CELERY_BROKER_URL)
    if not broker_url.startswith("redis://"):
        pytest.fail(f"This test needs Redis as the broker (CELERY_BROKER_URL), not {broker_url!r}.")
    app.control.purge()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for_the_test_database(),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "INFERENSYS_DATA_DIR": str(settings.DATA_DIR),
    }
    command = [
        str(CELERY), "-A", "config", "worker", "-Q", "default,ingest,rollup", "--pool=solo", "-l", "info",
        "--without-mingle", "--without-gossip", "-n", f"{name}-{uuid.uuid4().hex[:8]}@%h",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
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
