"""Retry and upload on the Ingestion page (admin and finance, `attribution.add_ingestrun`).

An uploaded CUR file goes through the existing parsers and the existing ingest task in a real
Celery worker, to the cent; a failed run retried the same way. Bad files are refused with what was
wrong, storing nothing (no run, no file, no audit event). Viewers and team leads are refused."""

from __future__ import annotations

import csv
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from attribution.ingest import services
from attribution.models import DailyCost, IngestRun
from governance.models import AuditEvent
from tests.attribution.conftest import cents, csv_rows, decimal_sum
from tests.celery_worker import celery_worker_process, wait_for
from tests.factories import CloudAccountFactory, UserFactory

SAMPLE = "aws/koku/November-2023-None.csv"


def _client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def _post(client: Client, url: str, data: dict):
    """A POST the way the browser sends it: with the CSRF token from the page's form."""
    client.get("/ingestion/")
    return client.post(url, {**data, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})


def _well_formed(row: dict) -> bool:
    """As many fields as the header (csv.DictReader files extras under None, fills gaps with None)."""
    return None not in row and None not in row.values()


def _upload(path, name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, path.read_bytes(), content_type="text/csv")


@pytest.fixture
def uploads(settings, tmp_path):
    settings.INGEST_UPLOAD_DIR = tmp_path / "uploads"
    return settings.INGEST_UPLOAD_DIR


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_an_upload_and_a_retry_ingest_through_the_worker_to_the_cent(uploads, shared_billing_data, tmp_path):
    source = shared_billing_data / SAMPLE
    account = CloudAccountFactory(slug="aws-upload", provider="aws")
    finance = UserFactory(username="cfo", roles=["finance"])
    client = _client(finance)
    log_path = tmp_path / "worker.log"
    with celery_worker_process(log_path, name="upload") as worker:
        response = _post(
            client,
            "/ingestion/upload/",
            {"account": "aws-upload", "file": _upload(source), "source_format": "auto"},
        )
        assert response.status_code == 302 and response["Location"] == "/ingestion/?account=aws-upload"
        (run,) = IngestRun.objects.filter(account=account)
        done = wait_for(
            lambda: IngestRun.objects.filter(pk=run.pk, state__in=["succeeded", "failed"]).first(),
            what="the uploaded file's run",
            process=worker,
            log_path=log_path,
        )
        assert done.state == "succeeded", done.error
        rows = csv_rows(source)
        readable = [row for row in rows if _well_formed(row)]
        assert len(readable) == len(rows) - 2  # the sample has two rows with a field too many or few
        billed = sum((cell.billed_cost for cell in DailyCost.objects.filter(account=account)), Decimal(0))
        assert cents(billed) == cents(decimal_sum(row["lineItem/UnblendedCost"] for row in readable))
        assert (done.rows_loaded, done.rows_rejected) == (len(readable), 2)
        page = client.get("/ingestion/?account=aws-upload").content.decode()
        assert f"queued as run #{run.pk}" in page
        (event,) = AuditEvent.objects.filter(action="upload")
        assert event.actor == finance and event.object_id == str(run.pk)
        assert event.changes["after"]["file"] == source.name

        # A restated version whose run failed (cancelled before it started): retried from the page.
        with open(source, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames
            kept = [r for r in reader if _well_formed(r) and r["resourceTags/user:app"] != "cost"]
        restated = tmp_path / "restated.csv"
        with open(restated, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(kept)
        (failed,) = services.ingest_runs_create(account=account, paths=[restated])
        services.ingest_run_cancel(run_id=failed.pk, reason="worker lost")
        response = _post(client, f"/ingestion/runs/{failed.pk}/retry/", {})
        assert response.status_code == 302
        retry = IngestRun.objects.filter(account=account).order_by("-pk").first()
        assert retry.pk > failed.pk and retry.source_files == IngestRun.objects.get(pk=failed.pk).source_files
        retried = wait_for(
            lambda: IngestRun.objects.filter(pk=retry.pk, state__in=["succeeded", "failed"]).first(),
            what="the retried run",
            process=worker,
            log_path=log_path,
        )
        assert retried.state == "succeeded", retried.error
        billed = sum((cell.billed_cost for cell in DailyCost.objects.filter(account=account)), Decimal(0))
        assert cents(billed) == cents(decimal_sum(row["lineItem/UnblendedCost"] for row in kept))
        assert IngestRun.objects.get(pk=failed.pk).state == "failed"  # kept in the history
        assert AuditEvent.objects.filter(action="retry", object_id=str(retry.pk), actor=finance).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content", "account", "message"),
    [
        ("notes.csv", b"hello,world\n1,2\n", "aws-bad", "notes.csv:"),
        ("empty.csv", b"", "aws-bad", "The submitted file is empty."),
        ("azure.csv", None, "aws-bad", "belong to a azure account"),
    ],
)
def test_a_bad_file_is_refused_with_the_reason_and_nothing_is_stored(
    uploads, shared_billing_data, name, content, account, message
):
    CloudAccountFactory(slug="aws-bad", provider="aws")
    if content is None:
        azure = next((shared_billing_data / "azure").rglob("*.csv"))
        content = azure.read_bytes()
    client = _client(UserFactory(username="cfo", roles=["finance"]))
    upload = SimpleUploadedFile(name, content, content_type="text/csv")
    response = _post(
        client, "/ingestion/upload/", {"account": account, "file": upload, "source_format": "auto"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was uploaded:" in html and message in html
    assert str(uploads) not in html  # the server's paths are not shown
    assert not IngestRun.objects.exists() and not AuditEvent.objects.exists()
    assert not any(path.is_file() for path in uploads.rglob("*"))


@pytest.mark.django_db
def test_bad_form_input_is_named(uploads, shared_billing_data):
    client = _client(UserFactory(username="cfo", roles=["finance"]))
    upload = _upload(shared_billing_data / SAMPLE)
    response = _post(
        client,
        "/ingestion/upload/",
        {"account": "nowhere", "file": upload, "source_format": "auto", "billing_period": "Nov 2023"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Cloud account: Select a valid choice" in html
    assert "Billing period: &#x27;Nov 2023&#x27; is not a month: write it as YYYY-MM" in html
    assert not IngestRun.objects.exists()


@pytest.mark.django_db
def test_only_failed_runs_are_retried_and_only_by_admin_and_finance(
    uploads, shared_billing_data, django_capture_on_commit_callbacks
):
    account = CloudAccountFactory(slug="aws-retry", provider="aws")
    (run,) = services.ingest_runs_create(account=account, paths=[shared_billing_data / SAMPLE])
    finance = _client(UserFactory(username="cfo", roles=["finance"]))
    # Pending is not failed: refused with the reason, nothing queued.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _post(finance, f"/ingestion/runs/{run.pk}/retry/", {})
    assert response.status_code == 302 and callbacks == []
    assert "only a failed run can be retried" in finance.get("/ingestion/").content.decode()
    services.ingest_run_cancel(run_id=run.pk, reason="not started")
    for roles in (["viewer"], ["team_lead"]):
        client = _client(UserFactory(roles=roles))
        html = client.get("/ingestion/").content.decode()
        assert "Upload a billing file" not in html and f"/ingestion/runs/{run.pk}/retry/" not in html
        assert _post(client, f"/ingestion/runs/{run.pk}/retry/", {}).status_code == 403
        upload = _upload(shared_billing_data / SAMPLE)
        assert (
            _post(client, "/ingestion/upload/", {"account": "aws-retry", "file": upload}).status_code == 403
        )
    assert Client().post(f"/ingestion/runs/{run.pk}/retry/").status_code == 302  # to the login page
    assert IngestRun.objects.count() == 1
    # Finance sees the button and retries: one new pending run, enqueued once the request commits.
    assert f"/ingestion/runs/{run.pk}/retry/" in finance.get("/ingestion/").content.decode()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _post(finance, f"/ingestion/runs/{run.pk}/retry/", {})
    assert response.status_code == 302 and len(callbacks) == 1
    assert IngestRun.objects.filter(state="pending").count() == 1
    # A second retry of the same failed run is refused: the pending retry is newer.
    response = _post(finance, f"/ingestion/runs/{run.pk}/retry/", {})
    assert "would replace it" in finance.get("/ingestion/").content.decode()
    assert IngestRun.objects.count() == 2


@pytest.mark.django_db
def test_csrf_is_required(uploads):
    run = IngestRun.objects.create(
        account=CloudAccountFactory(slug="aws-csrf"),
        billing_period_start="2026-10-01",
        billing_period_end="2026-11-01",
        state="failed",
    )
    client = _client(UserFactory(username="cfo", roles=["finance"]))
    assert client.post(f"/ingestion/runs/{run.pk}/retry/").status_code == 403
    assert IngestRun.objects.count() == 1


@pytest.mark.django_db
def test_the_page_with_the_upload_form_keeps_its_queries_bounded(uploads, django_assert_max_num_queries):
    account = CloudAccountFactory(slug="aws-many")
    for month in range(1, 10):
        IngestRun.objects.create(
            account=account,
            billing_period_start=f"2025-{month:02d}-01",
            billing_period_end=f"2025-{month + 1:02d}-01",
            state="failed",
            error="boom",
        )
    client = _client(UserFactory(username="cfo", roles=["finance"]))
    with django_assert_max_num_queries(11):
        response = client.get("/ingestion/upload/")
    html = response.content.decode()
    assert response.status_code == 200 and html.count(">Retry</button>") == 9
    assert '<details class="panel upload-panel" open id="upload">' in html
