"""SKU on DailyCost and the DailyTagCost rollup, filled by the ingest swap from a real CUR sample
(koku's November 2023 file: six SKUs, `user:app` and other resource tags, untagged rows), and the
explorer grouped and filtered by them: every figure equals the line items' sums to the cent."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import defaultdict
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import Client

from attribution.models import CostLineItem, DailyCost, DailyTagCost
from tests.attribution.conftest import cents
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

RANGE = "start=2023-11-01&end=2023-11-30&granularity=month"


def _day(item) -> dt.date:
    return item.charge_period_start.astimezone(dt.UTC).date()


def _by(items, key) -> dict:
    sums: dict = defaultdict(lambda: Decimal(0))
    for item in items:
        sums[key(item)] += item.billed_cost
    return {group: total for group, total in sums.items()}


def test_daily_cost_carries_the_sku_to_the_cent(loaded):
    expected = _by(loaded, lambda item: (_day(item), item.sku_id))
    assert len({sku for _, sku in expected}) >= 5  # the sample's SKUs and its SKU-less rows
    rolled = _by(DailyCost.objects.all(), lambda cell: (cell.day, cell.sku_id))
    assert rolled == expected


def test_the_tag_rollup_equals_the_line_items_per_key_and_value(loaded):
    keys = {key for item in loaded for key, value in item.normalized_tags.items() if value != ""}
    assert "app" in keys
    expected = {
        (day, key, value): total
        for key in keys
        for (day, value), total in _by(
            [item for item in loaded if item.normalized_tags.get(key, "") != ""],
            lambda item, key=key: (_day(item), str(item.normalized_tags[key])),
        ).items()
    }
    rolled = _by(DailyTagCost.objects.all(), lambda cell: (cell.day, cell.tag_key, cell.tag_value))
    assert rolled == expected
    # Per key, tagged + untagged = DailyCost: nothing is counted twice or lost.
    daily_total = sum((cell.billed_cost for cell in DailyCost.objects.all()), Decimal(0))
    for key in keys:
        untagged = sum((i.billed_cost for i in loaded if i.normalized_tags.get(key, "") == ""), Decimal(0))
        tagged = sum((total for (_, k, _), total in rolled.items() if k == key), Decimal(0))
        assert tagged + untagged == daily_total


def test_a_restatement_replaces_the_tag_rollup(loaded, sample, ingest_rows):
    """A new version of the period without the `app=cost` rows: its tag rows are gone too."""
    _fields, rows = sample
    kept = [row for row in rows if row["resourceTags/user:app"] != "cost"]
    assert 0 < len(kept) < len(rows)
    run = ingest_rows(kept)
    assert not DailyTagCost.objects.filter(tag_key="app", tag_value="cost").exists()
    items = list(CostLineItem.objects.filter(ingest_run_id=run.pk).select_related("tag_set"))
    tagged = _by([i for i in items if i.normalized_tags.get("app")], lambda i: i.normalized_tags["app"])
    assert _by(DailyTagCost.objects.filter(tag_key="app"), lambda cell: cell.tag_value) == tagged


def _page(query: str) -> str:
    client = Client()
    client.force_login(UserFactory(username="cfo", roles=["finance"]))
    response = client.get(f"/explorer/?{query}")
    assert response.status_code == 200
    return response.content.decode()


def _table(html: str) -> list[list[str]]:
    table = html[html.index('<table class="data-table" id="explorer-table"') : html.index("</table>")]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S)
        rows.append([re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells])
    return rows


def _money(cell: str) -> Decimal:
    return Decimal(cell.replace("$", "").replace(",", ""))


def test_the_explorer_groups_by_sku_to_the_cent(loaded):
    expected = {sku or "(none)": cents(total) for sku, total in _by(loaded, lambda i: i.sku_id).items()}
    table = _table(_page(f"{RANGE}&group_by=sku"))
    assert table[0][0] == "SKU"
    assert {row[0]: _money(row[-1]) for row in table[1:-1]} == expected
    assert _money(table[-1][-1]) == cents(sum((i.billed_cost for i in loaded), Decimal(0)))


def test_the_explorer_groups_by_a_tag_key_with_the_untagged_rest(loaded):
    expected = {
        value or "(none)": cents(total)
        for value, total in _by(loaded, lambda i: str(i.normalized_tags.get("app", ""))).items()
    }
    html = _page(f"{RANGE}&group_by=tag:app")
    table = _table(html)
    assert table[0][0] == "Tag app"
    assert {row[0]: _money(row[-1]) for row in table[1:-1]} == expected
    assert _money(table[-1][-1]) == cents(sum((i.billed_cost for i in loaded), Decimal(0)))
    # The tag keys on offer are those present in the rows.
    assert '<option value="tag:app" selected>Tag: app</option>' in html
    assert 'value="tag:environment"' not in html  # a column that is empty on every row


def test_a_tag_filter_with_another_group_by_is_in_the_url_and_the_csv(loaded):
    tagged = [i for i in loaded if i.normalized_tags.get("app") == "analytics"]
    untagged = [i for i in loaded if not i.normalized_tags.get("app")]
    query = f"{RANGE}&group_by=sku&f_tag=app%3Danalytics"
    html = _page(query)
    table = _table(html)
    expected = {sku or "(none)": cents(total) for sku, total in _by(tagged, lambda i: i.sku_id).items()}
    assert {row[0]: _money(row[-1]) for row in table[1:-1]} == expected
    assert '<option value="app=analytics" selected>' in html
    # Spend without the key: DailyCost minus the key's rows, per SKU.
    none_table = _table(_page(f"{RANGE}&group_by=sku&f_tag=app%3D%28none%29"))
    expected_none = {
        sku or "(none)": cents(total) for sku, total in _by(untagged, lambda i: i.sku_id).items()
    }
    assert {row[0]: _money(row[-1]) for row in none_table[1:-1]} == expected_none
    # The CSV is the table.
    client = Client()
    client.force_login(UserFactory(username="cfo2", roles=["finance"]))
    rows = list(csv.reader(io.StringIO(client.get(f"/explorer/?{query}&format=csv").content.decode())))
    assert rows[0][0] == "SKU" and len(rows) == len(table)
    for csv_row, table_row in zip(rows[1:], table[1:], strict=True):
        assert csv_row[0] == table_row[0]
        assert [Decimal(cell) for cell in csv_row[1:]] == [_money(cell) for cell in table_row[1:]]


def test_filtering_on_one_tag_while_grouping_by_another_is_refused_clearly(loaded):
    html = _page(f"{RANGE}&group_by=tag:app&f_tag=version%3Dprod")
    assert "Filter on the tag you group by (app), or group by a dimension that is not a tag." in html
    table = _table(html)
    assert _money(table[-1][-1]) == cents(sum((i.billed_cost for i in loaded), Decimal(0)))


def test_tag_queries_do_not_grow_with_rows(loaded, django_assert_max_num_queries):
    client = Client()
    client.force_login(UserFactory(username="cfo3", roles=["finance"]))
    # session, user, user and group permissions, filter choices, tag choices, latest day, two
    # reads (DailyCost; the key's rows by value, also taken off "(none)"), the scope check.
    with django_assert_max_num_queries(10):
        response = client.get(f"/explorer/?{RANGE}&group_by=tag:app")
    assert response.status_code == 200


def test_rollups_rebuild_fills_rollups_written_before_they_had_sku_and_tags(loaded):
    """Rollups lost or stale (an upgrade that added a column, a table restored from backup): the
    command rebuilds both from the current line items."""
    expected_daily = _by(DailyCost.objects.all(), lambda cell: (cell.day, cell.sku_id))
    expected_tags = _by(DailyTagCost.objects.all(), lambda cell: (cell.day, cell.tag_key, cell.tag_value))
    DailyTagCost.objects.all().delete()
    DailyCost.objects.all().delete()
    out = io.StringIO()
    call_command("rollups_rebuild", "--account", "aws-koku", stdout=out)
    assert "aws-koku 2023-11:" in out.getvalue()
    assert _by(DailyCost.objects.all(), lambda cell: (cell.day, cell.sku_id)) == expected_daily
    assert _by(DailyTagCost.objects.all(), lambda c: (c.day, c.tag_key, c.tag_value)) == expected_tags
