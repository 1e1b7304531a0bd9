"""DailyResourceCost, filled by the ingest swap from a real CUR sample (koku's November 2023 file,
untagged rows with and without a ResourceId), and the Unallocated page's top untagged resources
read from it, not from line items: every figure equals the line items' sums to the cent."""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from attribution.mapping.unallocated import RESOURCE_LIMIT, unallocated_page_build
from attribution.models import CostLineItem, DailyCost, DailyResourceCost
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _untagged(items) -> list:
    return [item for item in items if item.team_id is None and item.deployment_id is None]


def _resource(item) -> str:
    return item.resource_id or f"{item.service_name} (no resource id)"


def _by_day_and_resource(items) -> dict:
    sums: dict = defaultdict(Decimal)
    for item in items:
        sums[(item.charge_period_start.astimezone(dt.UTC).date(), _resource(item))] += item.billed_cost
    return dict(sums)


def _rolled() -> dict:
    sums: dict = defaultdict(Decimal)  # a resource may be billed under several services
    for cell in DailyResourceCost.objects.all():
        sums[(cell.day, cell.resource)] += cell.billed_cost
    return dict(sums)


def test_the_resource_rollup_equals_the_untagged_line_items(loaded):
    untagged = _untagged(loaded)
    assert len({_resource(item) for item in untagged}) > 3
    assert _rolled() == _by_day_and_resource(untagged)
    # Per day, it adds up to DailyCost's cells without a team and a deployment, to the cent.
    per_day: dict = defaultdict(Decimal)
    for cell in DailyCost.objects.filter(team__isnull=True, deployment__isnull=True):
        per_day[cell.day] += cell.billed_cost
    rolled_per_day: dict = defaultdict(Decimal)
    for (day, _), amount in _rolled().items():
        rolled_per_day[day] += amount
    assert rolled_per_day == per_day


def test_a_restatement_replaces_the_resource_rollup(loaded, sample, ingest_rows):
    _fields, rows = sample
    resources = sorted({row["lineItem/ResourceId"] for row in rows if row["lineItem/ResourceId"]})
    dropped, blanked = resources[0], resources[1]
    kept = [row for row in rows if row["lineItem/ResourceId"] != dropped]
    for row in kept:
        if row["lineItem/ResourceId"] == blanked:
            row["lineItem/ResourceId"] = ""  # rows without a ResourceId: one per service
    run = ingest_rows(kept)
    assert not DailyResourceCost.objects.filter(resource__in=[dropped, blanked]).exists()
    assert DailyResourceCost.objects.filter(resource__endswith=" (no resource id)").exists()
    assert _rolled() == _by_day_and_resource(_untagged(CostLineItem.objects.filter(ingest_run_id=run.pk)))


def test_another_periods_charges_on_the_same_days_add_up_with_the_loaded_run(loaded, sample, ingest_rows):
    """December's bill carrying charges of 30 November (late usage, a credit) for resources that
    November's rows have too: that day's rollup rows hold both runs' line items, whichever run is
    swapped in last (the loaded run's rows from its one pass, the other's from its line items)."""
    _fields, rows = sample
    late = [
        {
            **row,
            "bill/BillingPeriodStartDate": "2023-12-01T00:00:00Z",
            "bill/BillingPeriodEndDate": "2024-01-01T00:00:00Z",
        }
        for row in rows
        if row["lineItem/UsageStartDate"].startswith("2023-11-30")
    ]
    assert late
    december = ingest_rows(late, name="December-2023.csv")
    assert december.billing_period_start == dt.date(2023, 12, 1)
    current = [loaded[0].ingest_run_id, december.pk]
    shared = set(_by_day_and_resource(_untagged(loaded))) & set(
        _by_day_and_resource(_untagged(CostLineItem.objects.filter(ingest_run_id=december.pk)))
    )
    assert shared  # the same (day, resource) in both runs: one rollup row sums the two
    assert _rolled() == _by_day_and_resource(
        _untagged(CostLineItem.objects.filter(ingest_run_id__in=current))
    )
    # November restated (the sample again, one resource's rows without their ResourceId) while
    # December's rows stand: the loaded run is November's now, the other December's.
    restated = [dict(row) for row in rows]
    for row in restated:
        if row["lineItem/ResourceId"] == sorted(resource for _day, resource in shared)[0]:
            row["lineItem/ResourceId"] = ""
    november = ingest_rows(restated)
    current = [november.pk, december.pk]
    assert _rolled() == _by_day_and_resource(
        _untagged(CostLineItem.objects.filter(ingest_run_id__in=current))
    )


def test_rollups_rebuild_refills_it(loaded):
    expected = _rolled()
    DailyResourceCost.objects.all().delete()
    call_command("rollups_rebuild", "--account", "aws-koku", stdout=io.StringIO())
    assert _rolled() == expected


def test_the_unallocated_page_lists_the_top_resources_without_reading_line_items(loaded):
    finance = UserFactory(username="cfo", roles=["finance"])
    start, end = dt.date(2023, 11, 1), dt.date(2023, 11, 30)
    with CaptureQueriesContext(connection) as queries:
        page = unallocated_page_build(user=finance, start=start, end=end)
    assert not [query for query in queries.captured_queries if "attribution_costlineitem" in query["sql"]]
    totals: dict = defaultdict(Decimal)
    for item in _untagged(loaded):
        if start <= item.charge_period_start.astimezone(dt.UTC).date() <= end:
            totals[(_resource(item), item.billing_currency)] += item.billed_cost
    expected = sorted(totals.items(), key=lambda entry: (-abs(entry[1]), entry[0]))[:RESOURCE_LIMIT]
    assert [((group.key, group.currency), group.billed) for group in page.by_resource] == expected
    client = Client()
    client.force_login(finance)
    body = client.get("/unallocated/?start=2023-11-01&end=2023-11-30").content.decode()
    assert expected[0][0][0] in body
