"""The legacy CUR layout (`<prefix>/<report>/<YYYYMMDD-YYYYMMDD>/<report>-Manifest.json` with
assemblyId and reportKeys), over real public samples: koku's S3 delivery tree and ice's manifests."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json

from attribution.connectors.aws import AwsBillingConnector
from attribution.connectors.services import account_sync
from attribution.models import BillingPeriodVersion, CostLineItem, IngestRun, RunState
from governance.choices import AlertKind
from governance.models import Alert
from tests.attribution.connectors.conftest import s3_client, upload_tree
from tests.factories import CloudAccountFactory

BUCKET = "legacy-cur"


def legacy_account(*, prefix: str, report: str):
    return CloudAccountFactory(
        provider="aws",
        slug="aws-legacy",
        source_settings={"bucket": BUCKET, "prefix": prefix, "export_name": report, "credentials": "ambient"},
    )


def test_it_discovers_the_koku_delivery_tree(moto, shared_billing_data, db):
    upload_tree(shared_billing_data / "aws" / "koku-cur-s3-layout", bucket=BUCKET)
    account = legacy_account(prefix="", report="koku-local")

    deliveries = AwsBillingConnector(account).discover()

    assert len(deliveries) == 1
    delivery = deliveries[0]
    assert delivery.billing_period_start == dt.date(2018, 8, 1)
    assert delivery.details["layout"] == "legacy_cur"
    assert delivery.source_version.startswith("16e57707-f9e3-49be-8be6-b84e684b5194:")
    assert [f.name for f in delivery.files] == [
        f"s3://{BUCKET}/koku-local/20180801-20180901/16e57707-f9e3-49be-8be6-b84e684b5194/koku-local-1.csv.gz"
    ]
    assert not delivery.is_final  # bill/InvoiceId is empty in the sample
    with delivery.files[0].open() as stream:
        assert gzip.decompress(stream.read()).startswith(b"identity/LineItemId,")


def test_a_delivery_whose_rows_belong_to_another_period_fails_with_the_reason(moto, shared_billing_data, db):
    # Koku's generated sample: the folder says August 2018, the rows say June 2018.
    upload_tree(shared_billing_data / "aws" / "koku-cur-s3-layout", bucket=BUCKET)
    account = legacy_account(prefix="", report="koku-local")

    run = account_sync(account_id=account.pk, inline_ingest=True)

    # Planning streams only the head of the object (the period is stated by the delivery); the load
    # meets the June rows and fails the ingest run with the reason, naming the object in S3.
    assert run.state == RunState.SUCCEEDED
    (ingest,) = IngestRun.objects.filter(pk__in=run.ingest_run_ids)
    assert ingest.state == "failed"
    assert ingest.error.startswith(
        f"s3://{BUCKET}/koku-local/20180801-20180901/16e57707-f9e3-49be-8be6-b84e684b5194/"
        "koku-local-1.csv.gz: rows of billing period 2018-06 in a delivery for 2018-08"
    )
    # Nothing loaded, the version not recorded (the next sync tries again), and an alert says why.
    assert not CostLineItem.objects.filter(account=account).exists()
    assert not BillingPeriodVersion.objects.filter(account=account).exists()
    alert = Alert.objects.get(kind=AlertKind.INGEST_FAILED)
    assert "rows of billing period 2018-06 in a delivery for 2018-08" in alert.message


def _csv_gz(invoice_id: str) -> bytes:
    text = (
        "identity/LineItemId,bill/InvoiceId,bill/BillingPeriodStartDate\nabc," + invoice_id + ",2017-08-01\n"
    )
    return gzip.compress(text.encode())


def test_it_reads_ice_manifests_and_notices_a_rewritten_file(moto, shared_billing_data, db):
    manifest = json.loads(
        (shared_billing_data / "aws" / "ice-cur-manifests" / "manifestTest.json").read_text()
    )
    client = s3_client()
    client.create_bucket(Bucket=BUCKET)
    folder = "hourly/hourly-cost-and-usage/20170801-20170901"
    client.put_object(
        Bucket=BUCKET, Key=f"{folder}/hourly-cost-and-usage-Manifest.json", Body=json.dumps(manifest)
    )
    for key in manifest["reportKeys"]:
        client.upload_fileobj(io.BytesIO(_csv_gz("Estimated")), BUCKET, key)
    account = legacy_account(prefix="hourly", report="hourly-cost-and-usage")
    connector = AwsBillingConnector(account)

    first = connector.discover()[0]
    assert first.billing_period_start == dt.date(2017, 8, 1)
    assert first.source_version.startswith(manifest["assemblyId"])
    assert len(first.files) == 2 and not first.is_final  # "Estimated" is not an invoice

    # Same assembly, a file rewritten in place once the invoice is issued: a new version, final.
    client.upload_fileobj(io.BytesIO(_csv_gz("123456789")), BUCKET, manifest["reportKeys"][0])
    second = AwsBillingConnector(account).discover()[0]
    assert second.source_version != first.source_version
    assert second.source_version.startswith(manifest["assemblyId"])
    assert second.is_final
