"""The focus_line_items view: FOCUS column names in their exact case, values as stored.

BI tools query this view by name; a renamed or re-typed column breaks finance dashboards.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection

from attribution.models import CostLineItem, IngestRun
from tests.factories import CloudAccountFactory, DeploymentFactory, TeamFactory, line_item_create

pytestmark = pytest.mark.django_db

UTC = dt.UTC


@pytest.fixture
def line_item() -> CostLineItem:
    account = CloudAccountFactory(slug="aws-payer", provider="aws")
    team = TeamFactory(slug="search", name="Search")
    deployment = DeploymentFactory(slug="llama-70b-aws-use1")
    run = IngestRun.objects.create(
        account=account,
        billing_period_start=dt.date(2026, 10, 1),
        billing_period_end=dt.date(2026, 11, 1),
        state="succeeded",
    )
    return line_item_create(
        account=account,
        ingest_run=run,
        source_line=42,
        billing_period_start=dt.date(2026, 10, 1),
        billed_cost=Decimal("123.4567890123"),
        effective_cost=Decimal("98.7654321000"),
        list_cost=Decimal("150.0000000000"),
        contracted_cost=None,
        billing_currency="USD",
        charge_period_start=dt.datetime(2026, 10, 3, 0, 0, tzinfo=UTC),
        charge_period_end=dt.datetime(2026, 10, 3, 1, 0, tzinfo=UTC),
        billing_period_start_at=dt.datetime(2026, 10, 1, tzinfo=UTC),
        billing_period_end_at=dt.datetime(2026, 11, 1, tzinfo=UTC),
        charge_category="Usage",
        charge_class="",
        provider_name="AWS",
        billing_account_id="111122223333",
        sub_account_id="444455556666",
        region_id="us-east-1",
        resource_id="arn:aws:sagemaker:us-east-1:444455556666:endpoint/llama-70b",
        service_name="Amazon SageMaker",
        service_category="AI and Machine Learning",
        sku_id="",
        pricing_category="Standard",
        consumed_quantity=Decimal("1.0000000000"),
        consumed_unit="Hrs",
        tags={"team": "search", "model": "llama-3.1-70b"},
        team=team,
        model=deployment.model,
        deployment=deployment,
    )


def select_focus(columns: list[str], line_item_id: int) -> dict[str, object]:
    quoted = ", ".join(f'"{column}"' for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT {quoted} FROM focus_line_items WHERE "x_LineItemId" = %s',  # noqa: S608 - fixed names
            [line_item_id],
        )
        row = cursor.fetchone()
        names = [description.name for description in cursor.description]
    assert row is not None
    return dict(zip(names, row, strict=True))


def test_the_view_exposes_focus_columns_in_their_exact_case(line_item):
    row = select_focus(
        [
            "BilledCost",
            "EffectiveCost",
            "ListCost",
            "ContractedCost",
            "BillingCurrency",
            "ChargePeriodStart",
            "ChargePeriodEnd",
            "BillingPeriodStart",
            "BillingPeriodEnd",
            "ChargeCategory",
            "ChargeClass",
            "ProviderName",
            "BillingAccountId",
            "SubAccountId",
            "RegionId",
            "ResourceId",
            "ServiceName",
            "ServiceCategory",
            "SkuId",
            "PricingCategory",
            "ConsumedQuantity",
            "ConsumedUnit",
            "Tags",
            "x_Account",
            "x_Provider",
            "x_Team",
            "x_Model",
            "x_Deployment",
            "x_IngestRunId",
            "x_SourceLine",
        ],
        line_item.pk,
    )
    assert row["BilledCost"] == Decimal("123.4567890123")
    assert row["EffectiveCost"] == Decimal("98.7654321000")
    assert row["ListCost"] == Decimal("150.0000000000")
    # No negotiated cost in the export: FOCUS 1.2 ContractedCost is then the billed cost.
    assert row["ContractedCost"] == Decimal("123.4567890123")
    assert row["BillingCurrency"] == "USD"
    assert row["ChargePeriodStart"] == dt.datetime(2026, 10, 3, 0, 0, tzinfo=UTC)
    assert row["ChargePeriodEnd"] == dt.datetime(2026, 10, 3, 1, 0, tzinfo=UTC)
    assert row["BillingPeriodStart"] == dt.datetime(2026, 10, 1, tzinfo=UTC)
    assert row["BillingPeriodEnd"] == dt.datetime(2026, 11, 1, tzinfo=UTC)
    assert row["ChargeCategory"] == "Usage"
    assert row["ProviderName"] == "AWS"
    assert row["BillingAccountId"] == "111122223333"
    assert row["SubAccountId"] == "444455556666"
    assert row["RegionId"] == "us-east-1"
    assert row["ResourceId"] == "arn:aws:sagemaker:us-east-1:444455556666:endpoint/llama-70b"
    assert row["ServiceName"] == "Amazon SageMaker"
    assert row["ServiceCategory"] == "AI and Machine Learning"
    assert row["PricingCategory"] == "Standard"
    assert row["ConsumedQuantity"] == Decimal("1")
    assert row["ConsumedUnit"] == "Hrs"
    # Django's psycopg setup hands jsonb back as text to raw cursors; the column itself is jsonb.
    assert json.loads(row["Tags"]) == {"team": "search", "model": "llama-3.1-70b"}
    # Our extensions: dimensions by slug, and where the row came from.
    assert row["x_Account"] == "aws-payer"
    assert row["x_Provider"] == "aws"
    assert row["x_Team"] == "search"
    assert row["x_Model"] == line_item.model.slug
    assert row["x_Deployment"] == "llama-70b-aws-use1"
    assert row["x_IngestRunId"] == line_item.ingest_run_id
    assert row["x_SourceLine"] == 42


def test_the_view_reports_empty_optional_columns_as_null(line_item):
    # FOCUS says "null when not applicable"; we store '' and the view turns it into NULL.
    row = select_focus(["ChargeClass", "SkuId", "AvailabilityZone", "PublisherName"], line_item.pk)
    # PublisherName MUST NOT be null in FOCUS 1.2: without a marketplace seller it is the provider.
    assert row == {"ChargeClass": None, "SkuId": None, "AvailabilityZone": None, "PublisherName": "AWS"}


def test_the_view_keeps_unattributed_rows_with_null_dimensions(line_item):
    CostLineItem.objects.filter(pk=line_item.pk).update(team=None, model=None, deployment=None)
    row = select_focus(["BilledCost", "x_Team", "x_Model", "x_Deployment"], line_item.pk)
    assert row == {
        "BilledCost": Decimal("123.4567890123"),
        "x_Team": None,
        "x_Model": None,
        "x_Deployment": None,
    }


def test_lowercase_names_are_not_the_focus_names(line_item):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'focus_line_items'"
        )
        columns = {name for (name,) in cursor.fetchall()}
    assert {"BilledCost", "EffectiveCost", "ChargePeriodStart", "x_Account", "x_Team"} <= columns
    assert "billedcost" not in columns
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'focus_line_items' AND column_name IN ('Tags', 'BilledCost') "
            "ORDER BY column_name"
        )
        assert [data_type for (data_type,) in cursor.fetchall()] == ["numeric", "jsonb"]
