"""AWS billing sync end to end: boto3 against a real moto server, the demo CUR 2.0 exports, the real
ingest pipeline and Postgres. Totals are compared with expected_totals.json to the cent."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import boto3
import pytest
from django.db.models import Sum
from django.utils import timezone

from attribution.connectors.aws import AwsBillingConnector
from attribution.connectors.services import account_sync
from attribution.models import (
    BillingPeriodVersion,
    CostLineItem,
    IngestRun,
    RunState,
    SyncErrorKind,
    SyncRun,
)
from governance.choices import AlertKind
from governance.models import Alert
from tests.attribution.connectors.conftest import (
    DEMO_BUCKET,
    EXPORT_ROOT,
    expected_entry,
    moto_auth_enable,
    s3_client,
    upload_tree,
)

SEPTEMBER, OCTOBER = dt.date(2026, 9, 1), dt.date(2026, 10, 1)


def period_totals(account, period: dt.date) -> tuple[int, Decimal, Decimal]:
    rows = CostLineItem.objects.filter(account=account, billing_period_start=period)
    sums = rows.aggregate(billed=Sum("billed_cost"), effective=Sum("effective_cost"))
    return rows.count(), sums["billed"], sums["effective"]


def assert_period_matches(account, period: dt.date, entry: dict) -> None:
    count, billed, effective = period_totals(account, period)
    assert count == entry["row_count"]
    assert billed == Decimal(entry["billed_cost"])
    assert effective == Decimal(entry["effective_cost"])


def upload_demo(demo_cur2) -> None:
    out, _ = demo_cur2
    upload_tree(out / "aws" / DEMO_BUCKET, bucket=DEMO_BUCKET)


def manifest_key(period: str) -> str:
    return f"{EXPORT_ROOT}/metadata/BILLING_PERIOD={period}/acme-cur2-daily-Manifest.json"


def test_it_syncs_two_billing_periods_to_the_cent(moto, demo_cur2, demo_company, settings):
    upload_demo(demo_cur2)
    _, expected = demo_cur2

    run = account_sync(account_id=demo_company.pk, trigger="manual", inline_ingest=True)

    assert run.state == RunState.SUCCEEDED, run.error
    assert (run.periods_found, run.periods_changed, run.periods_skipped) == (2, 2, 0)
    assert_period_matches(demo_company, SEPTEMBER, expected_entry(expected, period="2026-09"))
    assert_period_matches(demo_company, OCTOBER, expected_entry(expected, period="2026-10"))
    loaded = IngestRun.objects.filter(account=demo_company, state="succeeded")
    assert sorted(r.billing_period_start for r in loaded) == [SEPTEMBER, OCTOBER]
    versions = {v.billing_period_start: v for v in BillingPeriodVersion.objects.filter(account=demo_company)}
    # September carries its invoice id: final. October is month to date: not final.
    assert versions[SEPTEMBER].is_final and versions[SEPTEMBER].finalized_at is not None
    assert not versions[OCTOBER].is_final
    assert versions[SEPTEMBER].source_version.startswith(
        expected_entry(expected, period="2026-09")["execution_id"]
    )
    demo_company.refresh_from_db()
    assert demo_company.last_synced_at is not None
    # Streamed: nothing was written under DATA_DIR (no spool).
    assert not settings.DATA_DIR.exists() or not any(settings.DATA_DIR.rglob("*"))


def test_it_skips_an_unchanged_period(moto, demo_cur2, demo_company):
    upload_demo(demo_cur2)
    account_sync(account_id=demo_company.pk, inline_ingest=True)
    runs_before = IngestRun.objects.count()

    second = account_sync(account_id=demo_company.pk, inline_ingest=True)

    assert second.state == RunState.SUCCEEDED
    assert (second.periods_found, second.periods_changed, second.periods_skipped) == (2, 0, 2)
    assert IngestRun.objects.count() == runs_before
    assert [p["action"] for p in second.details["periods"]] == ["unchanged", "unchanged"]


def test_a_restated_period_replaces_the_old_version(moto, demo_cur2, demo_company):
    out, expected = demo_cur2
    early = expected_entry(expected, period="2026-09", version="superseded")
    final = expected_entry(expected, period="2026-09")
    upload_demo(demo_cur2)
    client = s3_client()
    # The state two days after month end: the manifest names the early execution.
    early_manifest = out / "_versions" / "aws" / "BILLING_PERIOD=2026-09" / early["execution_id"]
    client.upload_file(
        str(early_manifest / "acme-cur2-daily-Manifest.json"), DEMO_BUCKET, manifest_key("2026-09")
    )

    first = account_sync(account_id=demo_company.pk, inline_ingest=True)
    assert first.state == RunState.SUCCEEDED, first.error
    assert_period_matches(demo_company, SEPTEMBER, early)
    version = BillingPeriodVersion.objects.get(account=demo_company, billing_period_start=SEPTEMBER)
    assert version.source_version.startswith(early["execution_id"])
    assert not version.is_final  # no invoice id in the early execution

    # AWS delivers the final execution and rewrites the manifest.
    final_manifest = out / "aws" / DEMO_BUCKET / manifest_key("2026-09")
    client.upload_file(str(final_manifest), DEMO_BUCKET, manifest_key("2026-09"))
    second = account_sync(account_id=demo_company.pk, inline_ingest=True)

    assert second.state == RunState.SUCCEEDED, second.error
    assert (second.periods_changed, second.periods_skipped) == (1, 1)
    assert_period_matches(demo_company, SEPTEMBER, final)
    runs = IngestRun.objects.filter(account=demo_company, billing_period_start=SEPTEMBER)
    assert sorted(runs.values_list("state", flat=True)) == ["succeeded", "superseded"]
    version.refresh_from_db()
    assert version.source_version.startswith(final["execution_id"]) and version.is_final
    # Final for the first time is not a restatement.
    assert not Alert.objects.filter(kind=AlertKind.RESTATEMENT).exists()


def test_a_final_period_that_changes_raises_restated_after_close(moto, demo_cur2, demo_company):
    out, expected = demo_cur2
    upload_demo(demo_cur2)
    account_sync(account_id=demo_company.pk, inline_ingest=True)
    assert BillingPeriodVersion.objects.get(account=demo_company, billing_period_start=SEPTEMBER).is_final

    # A new execution after the invoice: AWS restated a closed month (a refund, a late credit).
    manifest = json.loads((out / "aws" / DEMO_BUCKET / manifest_key("2026-09")).read_text())
    manifest["executionId"] = "11111111-2222-3333-4444-555555555555"
    s3_client().put_object(
        Bucket=DEMO_BUCKET, Key=manifest_key("2026-09"), Body=json.dumps(manifest).encode()
    )
    run = account_sync(account_id=demo_company.pk, inline_ingest=True)

    assert run.state == RunState.SUCCEEDED
    september = next(p for p in run.details["periods"] if p["period"] == "2026-09")
    assert september["restated_after_close"] is True
    version = BillingPeriodVersion.objects.get(account=demo_company, billing_period_start=SEPTEMBER)
    assert version.restated_after_close
    assert version.source_version.startswith("11111111-2222-3333-4444-555555555555")
    alert = Alert.objects.get(kind=AlertKind.RESTATEMENT)
    assert "2026-09" in alert.message
    # Same bytes as before: the data stay as they were, to the cent.
    assert_period_matches(demo_company, SEPTEMBER, expected_entry(expected, period="2026-09"))


def test_it_rejects_bad_credentials_and_changes_nothing(moto, demo_cur2, demo_company, monkeypatch):
    upload_demo(demo_cur2)
    monkeypatch.setenv("ACME_AWS_KEY_ID", "AKIAEXAMPLEWRONGKEY1")
    monkeypatch.setenv("ACME_AWS_SECRET", "not-the-secret-0123456789")
    demo_company.source_settings = {
        **demo_company.source_settings,
        "credentials": {"access_key_id": "env:ACME_AWS_KEY_ID", "secret_access_key": "env:ACME_AWS_SECRET"},
    }
    demo_company.save()
    moto_auth_enable(moto)

    run = account_sync(account_id=demo_company.pk, inline_ingest=True)

    assert run.state == RunState.FAILED
    assert run.error_kind == SyncErrorKind.AUTHENTICATION
    assert "rejected the credentials" in run.error and "InvalidAccessKeyId" in run.error
    assert "not-the-secret" not in run.error
    assert not IngestRun.objects.exists()
    assert not CostLineItem.objects.exists()
    assert not BillingPeriodVersion.objects.exists()
    alert = Alert.objects.get(kind=AlertKind.INGEST_FAILED)
    assert "authentication" in alert.message
    report = AwsBillingConnector(demo_company).test_connection()
    assert not report.ok and report.error_kind == SyncErrorKind.AUTHENTICATION
    assert report.checks[0].name.startswith("credentials")


def test_it_names_the_missing_bucket(moto, demo_company):
    run = account_sync(account_id=demo_company.pk, inline_ingest=True)

    assert run.state == RunState.FAILED
    assert run.error_kind == SyncErrorKind.NOT_FOUND
    assert "bucket acme-billing-exports does not exist" in run.error
    assert not IngestRun.objects.exists()
    report = AwsBillingConnector(demo_company).test_connection()
    assert report.error_kind == SyncErrorKind.NOT_FOUND and "acme-billing-exports" in report.message


def test_it_names_the_missing_permission(moto, demo_cur2, demo_company, monkeypatch):
    upload_demo(demo_cur2)
    # Three free calls to create a user who may list the bucket but not read its objects.
    moto_auth_enable(moto, unauthenticated_actions=3)
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName="inferensys-sync")
    key = iam.create_access_key(UserName="inferensys-sync")["AccessKey"]
    iam.put_user_policy(
        UserName="inferensys-sync",
        PolicyName="list-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{DEMO_BUCKET}"}
                ],
            }
        ),
    )
    monkeypatch.setenv("SYNC_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("SYNC_SECRET", key["SecretAccessKey"])
    demo_company.source_settings = {
        **demo_company.source_settings,
        "credentials": {"access_key_id": "env:SYNC_KEY_ID", "secret_access_key": "env:SYNC_SECRET"},
    }
    demo_company.save()

    report = AwsBillingConnector(demo_company).test_connection()

    assert not report.ok
    assert report.error_kind == SyncErrorKind.PERMISSION
    assert [c.ok for c in report.checks] == [True, True, False]
    assert "missing permission s3:GetObject on acme-billing-exports/cur2/acme-cur2-daily/metadata/" in (
        report.message
    )


def test_it_reports_an_empty_export(moto, demo_company):
    s3_client().create_bucket(Bucket=DEMO_BUCKET)

    report = AwsBillingConnector(demo_company).test_connection()

    assert report.error_kind == SyncErrorKind.EMPTY
    assert "no billing period found under s3://acme-billing-exports/cur2/acme-cur2-daily/" in report.message


def test_a_connection_test_of_a_healthy_export_passes(moto, demo_cur2, demo_company):
    upload_demo(demo_cur2)

    report = AwsBillingConnector(demo_company).test_connection()

    assert report.ok, report.message
    assert "2 billing period(s), newest 2026-10" in [c.detail for c in report.checks][2]


def test_two_syncs_of_one_account_never_overlap(moto, demo_company):
    from attribution.connectors.services import SyncBusyError, sync_run_request

    running = sync_run_request(account_id=demo_company.pk)
    SyncRun.objects.filter(pk=running.pk).update(state=RunState.RUNNING, started_at=timezone.now())

    with pytest.raises(SyncBusyError):
        account_sync(account_id=demo_company.pk, inline_ingest=True)
    assert SyncRun.objects.filter(account=demo_company, state=RunState.RUNNING).count() == 1


def test_a_sync_abandoned_by_a_dead_worker_does_not_block_the_account(moto, demo_cur2, demo_company):
    from attribution.connectors.services import sync_run_request

    upload_demo(demo_cur2)
    stale = sync_run_request(account_id=demo_company.pk)
    SyncRun.objects.filter(pk=stale.pk).update(
        state=RunState.RUNNING, started_at=timezone.now() - dt.timedelta(hours=3)
    )

    run = account_sync(account_id=demo_company.pk, inline_ingest=True)

    assert run.state == RunState.SUCCEEDED
    stale.refresh_from_db()
    assert stale.state == RunState.FAILED and "abandoned" in stale.error
