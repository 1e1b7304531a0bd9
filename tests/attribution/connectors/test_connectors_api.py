"""The connectors' API, page and commands: who may start syncs and tests, what they answer."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from attribution.models import IngestRun, RunState, SyncKind, SyncRun
from governance.services import api_token_create
from tests.attribution.connectors.conftest import DEMO_BUCKET, upload_tree
from tests.factories import UserFactory


@pytest.fixture
def finance(db):
    return UserFactory(username="fiona", roles=["finance"])


@pytest.fixture
def viewer(db):
    return UserFactory(username="victor", roles=["viewer"])


def test_finance_tests_a_connection_and_sees_each_check(moto, demo_cur2, demo_company, finance, client):
    upload_tree(demo_cur2[0] / "aws" / DEMO_BUCKET, bucket=DEMO_BUCKET)
    client.force_login(finance)

    response = client.post(f"/api/v1/accounts/{demo_company.pk}/test-connection")

    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["error_kind"] == ""
    assert [c["ok"] for c in body["checks"]] == [True, True, True, True]
    run = SyncRun.objects.get(pk=body["sync_run_id"])
    assert (run.kind, run.state, run.trigger) == (SyncKind.CONNECTION_TEST, RunState.SUCCEEDED, "api")


def test_a_failing_connection_test_says_what_failed(moto, demo_company, finance, client):
    client.force_login(finance)

    body = client.post(f"/api/v1/accounts/{demo_company.pk}/test-connection").json()

    assert body["ok"] is False and body["error_kind"] == "not_found"
    assert "bucket acme-billing-exports does not exist" in body["message"]


def test_it_rejects_syncs_and_tests_from_viewers_anonymous_and_read_tokens(
    moto, demo_company, viewer, client
):
    assert client.post(f"/api/v1/accounts/{demo_company.pk}/sync").status_code in (401, 403)
    client.force_login(viewer)
    for action in ("sync", "test-connection"):
        response = client.post(f"/api/v1/accounts/{demo_company.pk}/{action}")
        assert response.status_code == 403
    client.logout()
    admin = UserFactory(username="ada", roles=["admin"])
    _, read_token = api_token_create(user=admin, name="bi", scopes=["read"])
    response = client.post(
        f"/api/v1/accounts/{demo_company.pk}/sync", HTTP_AUTHORIZATION=f"Bearer {read_token}"
    )
    assert response.status_code == 403 and "write:accounts" in response.json()["detail"]
    assert not SyncRun.objects.exists()
    _, write_token = api_token_create(user=admin, name="ops", scopes=["read", "write:accounts"])
    response = client.post(
        f"/api/v1/accounts/{demo_company.pk}/sync", HTTP_AUTHORIZATION=f"Bearer {write_token}"
    )
    assert response.status_code == 202


def test_a_sync_request_is_queued_once(moto, demo_company, finance, client):
    client.force_login(finance)

    first = client.post(f"/api/v1/accounts/{demo_company.pk}/sync")
    second = client.post(f"/api/v1/accounts/{demo_company.pk}/sync")

    assert first.status_code == 202
    assert first.json()["state"] == "pending" and first.json()["account"] == "aws-prod"
    assert second.status_code == 409 and second.json()["id"] == first.json()["id"]
    assert SyncRun.objects.filter(kind=SyncKind.BILLING).count() == 1


def test_sync_runs_are_listed_filtered_and_paginated(demo_company, viewer, client):
    from attribution.connectors.services import sync_run_request

    for _ in range(3):
        sync_run_request(account_id=demo_company.pk, kind=SyncKind.BILLING)
    test_run = sync_run_request(account_id=demo_company.pk, kind=SyncKind.CONNECTION_TEST)
    SyncRun.objects.filter(pk=test_run.pk).update(state=RunState.FAILED, error_kind="permission")
    client.force_login(viewer)

    with CaptureQueriesContext(connection) as queries:
        page = client.get("/api/v1/sync-runs?limit=2").json()
    assert page["count"] == 4 and len(page["results"]) == 2 and page["next"]
    assert len(queries) <= 6
    failed = client.get("/api/v1/sync-runs?state=failed&kind=connection_test&account=aws-prod").json()
    assert [r["id"] for r in failed["results"]] == [test_run.pk]
    assert failed["results"][0]["error_kind"] == "permission"
    assert client.get("/api/v1/sync-runs?account=nobody").json()["count"] == 0
    assert set(page["results"][0]) >= {"id", "account", "kind", "state", "progress_message", "ingest_run_ids"}


def test_the_accounts_page_shows_the_buttons_to_finance_only(moto, demo_company, finance, viewer, client):
    client.force_login(viewer)
    page = client.get("/accounts/")
    assert page.status_code == 200
    assert "Acme AWS" in page.content.decode() and "Test connection" not in page.content.decode()
    assert client.post(f"/accounts/{demo_company.pk}/test-connection").status_code == 403

    client.force_login(finance)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/accounts/")
    body = page.content.decode()
    assert "Test connection" in body and "csrfmiddlewaretoken" in body
    assert len(queries) <= 10

    response = client.post(f"/accounts/{demo_company.pk}/test-connection", follow=True)
    body = response.content.decode()
    assert "bucket acme-billing-exports does not exist" in body
    assert SyncRun.objects.filter(kind=SyncKind.CONNECTION_TEST, state=RunState.FAILED).count() == 1
    assert 'data-account="aws-prod"' in body and "Failed" in body


def test_the_test_connection_command_exits_non_zero_with_the_reason(moto, demo_company):
    with pytest.raises(CommandError, match="not_found: .*bucket acme-billing-exports does not exist"):
        call_command("test_connection", "aws-prod", stdout=io.StringIO())


def test_sync_account_wait_loads_the_periods_here(moto, demo_cur2, demo_company):
    upload_tree(demo_cur2[0] / "aws" / DEMO_BUCKET, bucket=DEMO_BUCKET)
    out = io.StringIO()

    call_command("sync_account", "aws-prod", wait=True, no_usage=True, stdout=out)

    text = out.getvalue()
    assert "2026-09: ingest" in text and "2026-10: ingest" in text
    assert "2 period(s) found, 2 loaded, 0 unchanged" in text
    assert IngestRun.objects.filter(state="succeeded").count() == 2


def test_the_connection_test_task_records_a_run(moto, demo_company):
    from attribution.connectors.tasks import connection_test_task

    outcome = connection_test_task.apply(args=(demo_company.pk,)).get()

    assert outcome["ok"] is False and outcome["error_kind"] == "not_found"
    run = SyncRun.objects.get(pk=outcome["sync_run_id"])
    assert run.kind == SyncKind.CONNECTION_TEST and run.state == RunState.FAILED
    assert run.details["checks"][0]["ok"] is False


def test_an_unexpected_error_fails_the_run_instead_of_leaving_it_running(moto, demo_company):
    from attribution.connectors.services import account_sync

    demo_company.source_settings = {**demo_company.source_settings, "usage_bucket_seconds": 3600, "region": 7}
    demo_company.save()

    with pytest.raises(Exception):  # noqa: B017 - whatever the bug, the run must not stay running
        account_sync(account_id=demo_company.pk)
    run = SyncRun.objects.get(account=demo_company)
    assert run.state == RunState.FAILED and run.error
