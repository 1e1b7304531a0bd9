"""Invariants the attribution tables hold by themselves (constraints and clean())."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from attribution.models import CloudAccount, DailyCost, IngestRun, UsageRecord
from tests.factories import (
    CloudAccountFactory,
    DailyCostFactory,
    DeploymentFactory,
    ServedModelFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db

OCTOBER = dt.date(2026, 10, 1)
NOVEMBER = dt.date(2026, 11, 1)


def make_run(account: CloudAccount, *, state: str, start: dt.date = OCTOBER, end: dt.date = NOVEMBER):
    return IngestRun.objects.create(
        account=account, billing_period_start=start, billing_period_end=end, state=state
    )


def assert_integrity_error(create, constraint: str) -> None:
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        create()


# --- IngestRun ---------------------------------------------------------------------------------------


def test_it_rejects_a_second_running_ingest_for_the_same_period():
    account = CloudAccountFactory()
    make_run(account, state="running")
    assert_integrity_error(lambda: make_run(account, state="running"), "ingestrun_one_running_per_period")


def test_it_allows_running_ingests_for_other_periods_and_accounts():
    account = CloudAccountFactory()
    make_run(account, state="running")
    make_run(account, state="running", start=NOVEMBER, end=dt.date(2026, 12, 1))
    make_run(CloudAccountFactory(), state="running")
    assert IngestRun.objects.filter(state="running").count() == 3


def test_it_rejects_two_current_versions_of_a_period():
    account = CloudAccountFactory()
    make_run(account, state="succeeded")
    assert_integrity_error(lambda: make_run(account, state="succeeded"), "ingestrun_one_current_per_period")


def test_it_keeps_any_number_of_failed_and_superseded_runs():
    account = CloudAccountFactory()
    make_run(account, state="succeeded")
    for state in ("failed", "failed", "superseded", "superseded", "pending"):
        make_run(account, state=state)
    assert IngestRun.objects.filter(account=account).count() == 6


def test_it_rejects_a_billing_period_that_ends_before_it_starts():
    account = CloudAccountFactory()
    assert_integrity_error(
        lambda: make_run(account, state="pending", start=NOVEMBER, end=OCTOBER), "ingestrun_period_ordered"
    )
    assert_integrity_error(
        lambda: make_run(account, state="pending", start=OCTOBER, end=OCTOBER), "ingestrun_period_ordered"
    )


def test_it_rejects_an_unknown_ingest_state():
    account = CloudAccountFactory()
    assert_integrity_error(lambda: make_run(account, state="done"), "ingestrun_state_valid")


def test_ingest_progress_is_a_fraction_of_bytes():
    run = IngestRun(bytes_total=400, bytes_processed=100)
    assert run.progress == 0.25
    assert IngestRun(bytes_total=0).progress is None


# --- Currencies and accounts -------------------------------------------------------------------------


@pytest.mark.parametrize("currency", ["usd", "US", "", "U$D", "1US"])
def test_it_rejects_a_currency_that_is_not_an_iso_code(currency):
    assert_integrity_error(
        lambda: CloudAccountFactory(billing_currency=currency), "cloudaccount_currency_iso"
    )


def test_it_accepts_iso_currencies():
    assert CloudAccountFactory(billing_currency="EUR").billing_currency == "EUR"


def test_it_rejects_an_unknown_provider():
    assert_integrity_error(lambda: CloudAccountFactory(provider="ibm"), "cloudaccount_provider_valid")


def test_it_rejects_a_plain_text_secret_in_source_settings():
    account = CloudAccountFactory.build(
        slug="aws-prod",
        source_settings={"bucket": "billing", "auth": {"secret_access_key": "wJalrXUtnFEMI/K7MDENG"}},
    )
    with pytest.raises(ValidationError) as excinfo:
        account.full_clean()
    message = " ".join(excinfo.value.messages)
    assert "auth.secret_access_key looks like a credential" in message
    assert "env:VARIABLE" in message
    # The secret itself is never echoed back in the error.
    assert "wJalrXUtnFEMI" not in message


def test_it_accepts_references_to_secrets_in_source_settings():
    account = CloudAccountFactory.build(
        slug="aws-prod",
        source_settings={
            "bucket": "billing",
            "secret_access_key": "env:AWS_SECRET_ACCESS_KEY",
            "client_secret": "file:/run/secrets/azure-client-secret",
            "credentials": "ambient",
        },
    )
    account.full_clean()


def test_it_rejects_source_settings_that_are_not_an_object():
    account = CloudAccountFactory.build(slug="gcp-prod", source_settings=["token", "abc"])
    with pytest.raises(ValidationError, match="must be a JSON object"):
        account.full_clean()


# --- Usage -------------------------------------------------------------------------------------------


def make_usage(deployment, *, team=None, requests: int = 10, errors: int = 0) -> UsageRecord:
    return UsageRecord.objects.create(
        bucket_start=dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.UTC),
        bucket_seconds=60,
        reporter="haproxy-eu",
        deployment=deployment,
        team=team,
        model=deployment.model,
        requests=requests,
        errors=errors,
    )


def test_it_rejects_more_errors_than_requests():
    deployment = DeploymentFactory()
    make_usage(deployment, requests=5, errors=5)
    assert_integrity_error(
        lambda: make_usage(deployment, team=TeamFactory(), requests=5, errors=6), "usagerecord_counts_valid"
    )


def test_it_rejects_negative_usage_counts():
    deployment = DeploymentFactory()
    assert_integrity_error(lambda: make_usage(deployment, requests=-1), "usagerecord_counts_valid")


def test_it_rejects_a_duplicate_usage_bucket_even_without_a_team():
    deployment = DeploymentFactory()
    make_usage(deployment, team=None)
    # NULL team must not make two rows for the same bucket "distinct".
    assert_integrity_error(lambda: make_usage(deployment, team=None), "usagerecord_unique_bucket")


def test_it_keeps_separate_usage_buckets_per_team():
    deployment = DeploymentFactory()
    make_usage(deployment, team=None)
    make_usage(deployment, team=TeamFactory())
    assert UsageRecord.objects.count() == 2


# --- Daily rollup ------------------------------------------------------------------------------------


def test_it_rejects_a_duplicate_daily_cell_with_null_dimensions():
    account = CloudAccountFactory()
    DailyCostFactory(account=account, team=None, model=None, deployment=None)
    assert_integrity_error(
        lambda: DailyCostFactory(account=account, team=None, model=None, deployment=None),
        "dailycost_unique_cell",
    )


def test_it_keeps_daily_cells_apart_by_each_dimension():
    account = CloudAccountFactory()
    team, model = TeamFactory(), ServedModelFactory()
    DailyCostFactory(account=account)
    DailyCostFactory(account=account, team=team)
    DailyCostFactory(account=account, team=team, model=model)
    DailyCostFactory(account=account, billing_currency="EUR")
    DailyCostFactory(account=account, charge_category="Tax")
    DailyCostFactory(account=account, day=dt.date(2026, 10, 2))
    assert DailyCost.objects.filter(account=account).count() == 6
    total = sum(row.billed_cost for row in DailyCost.objects.filter(account=account))
    assert total == Decimal("60.00")


def test_source_settings_accept_references_nested_under_a_credential_key():
    from attribution.models import validate_source_settings

    validate_source_settings({"credentials": {"client_id": "app", "client_secret": "env:AZURE_SECRET"}})
    with pytest.raises(ValidationError, match="credentials.client_secret"):
        validate_source_settings({"credentials": {"client_secret": "hunter2"}})
