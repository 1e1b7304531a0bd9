"""Transient failures (S3 answering 503 SlowDown from a loopback server) put the run back to pending
for a retry with backoff and jitter; after the last attempt the run fails with its reason."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from attribution.connectors.base import ConnectorError
from attribution.connectors.services import account_sync, sync_run_request
from attribution.connectors.tasks import MAX_RETRIES, account_sync_task, retry_countdown
from attribution.models import RunState, SyncErrorKind, SyncRun
from governance.choices import AlertKind
from governance.models import Alert

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class _SlowDown(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.hits += 1
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(SLOW_DOWN)))
        self.end_headers()
        self.wfile.write(SLOW_DOWN)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def throttling_s3(demo_company, moto):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowDown)
    server.hits = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    demo_company.source_settings = {
        **demo_company.source_settings,
        "endpoint_url": f"http://127.0.0.1:{server.server_address[1]}",
    }
    demo_company.save()
    yield server
    server.shutdown()


def test_a_throttled_sync_goes_back_to_pending_for_a_retry(throttling_s3, demo_company):
    run = sync_run_request(account_id=demo_company.pk)

    with pytest.raises(ConnectorError) as caught:
        account_sync(account_id=demo_company.pk, sync_run_id=run.pk)

    assert caught.value.transient and caught.value.error_kind == SyncErrorKind.TRANSIENT
    assert throttling_s3.hits >= 2  # botocore's own retries came first
    run.refresh_from_db()
    assert run.state == RunState.PENDING and run.error_kind == SyncErrorKind.TRANSIENT
    assert "SlowDown" in run.error
    assert not Alert.objects.exists()  # not a failure yet


def test_after_the_last_attempt_the_sync_fails_with_its_reason(throttling_s3, demo_company):
    run = sync_run_request(account_id=demo_company.pk)

    result = account_sync_task.apply(args=(demo_company.pk, run.pk, "schedule"), retries=MAX_RETRIES)

    assert result.get()["state"] == RunState.FAILED
    run.refresh_from_db()
    assert run.state == RunState.FAILED and run.error_kind == SyncErrorKind.TRANSIENT
    assert run.error.startswith(f"gave up after {MAX_RETRIES + 1} attempts:") and "SlowDown" in run.error
    assert Alert.objects.get(kind=AlertKind.INGEST_FAILED)


def test_backoff_grows_with_jitter_and_honours_retry_after():
    for retries in range(6):
        base = min(900, 30 * 2**retries)
        samples = [retry_countdown(retries=retries) for _ in range(200)]
        assert all(0.5 * base <= s <= 1.5 * base for s in samples)
        assert len({round(s, 3) for s in samples}) > 150  # jittered, not a fixed schedule
    assert retry_countdown(retries=0, retry_after=120) == 120


def test_a_redelivered_task_of_a_finished_run_does_nothing(throttling_s3, demo_company):
    run = sync_run_request(account_id=demo_company.pk)
    SyncRun.objects.filter(pk=run.pk).update(state=RunState.SUCCEEDED)

    # A redelivered message for a run that already finished does nothing.
    assert account_sync(account_id=demo_company.pk, sync_run_id=run.pk) is None
    assert throttling_s3.hits == 0
