"""Re-applying rules reads each period's line items once (the UPDATE once joined the partition to
itself: with no index on id and no statistics on a fresh partition that was O(rows²), ten minutes
for one month of the GCP demo)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction

from attribution.mapping import services as rules
from attribution.models import DimensionRule

pytestmark = pytest.mark.django_db


def test_the_remap_update_scans_the_line_items_once(ingest_periods, dims):
    [run, _] = ingest_periods()
    DimensionRule.objects.create(
        name="sagemaker", match_field="service_name", operator="equals", value="Amazon SageMaker",
        set_team=dims["ads"],
    )  # fmt: skip
    params = {**rules._base_params(), "account": run.account_id, "period": dt.date(2024, 3, 1)}
    with transaction.atomic(), connection.cursor() as cursor:
        rules._mapping_prepare(cursor, params=params, with_candidate=False, period_scope=True)
        cursor.execute("EXPLAIN " + rules.remap_update_sql(fresh_ingest=False), params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        rules._mapping_drop(cursor)
    scans = [line for line in plan.splitlines() if "Scan on attribution_costlineitem_r" in line]
    assert len(scans) == 1, plan
    # And it still maps: the SageMaker line item without a team tag goes to ads.
    applied = rules.dimension_rules_apply(account_id=run.account_id, billing_period_start=dt.date(2024, 3, 1))
    assert applied["line_items"] == 1
