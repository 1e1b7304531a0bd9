"""The cost explorer: totals to the cent from the rollup, grouping and periods, scoping per role,
one currency at a time, the CSV equal to the table, and a bounded number of queries."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from decimal import Decimal

import pytest
from django.test import Client

from attribution.models import CloudAccount
from tests.factories import (
    CloudAccountFactory,
    DailyCostFactory,
    DeploymentFactory,
    MembershipFactory,
    ServedModelFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
RANGE = "start=2026-10-01&end=2026-10-14"


@pytest.fixture
def world():
    aws = CloudAccountFactory(slug="aws-prod", provider="aws")
    gcp = CloudAccountFactory(slug="gcp-prod", provider="gcp")
    search, ads = TeamFactory(slug="search"), TeamFactory(slug="ads")
    llama = ServedModelFactory(slug="llama")
    spot = DeploymentFactory(slug="llama-aws-spot", model=llama, provider="aws", pricing_mode="spot")
    for day in (dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 8)):
        DailyCostFactory(
            day=day,
            account=aws,
            team=search,
            model=llama,
            deployment=spot,
            billed_cost=Decimal("100.10"),
            effective_cost=Decimal("90.05"),
        )
        DailyCostFactory(
            day=day,
            account=gcp,
            team=ads,
            billed_cost=Decimal("40.01"),
            effective_cost=Decimal("40.01"),
            service_name="Vertex AI",
        )
        DailyCostFactory(
            day=day, account=aws, team=None, billed_cost=Decimal("0.03"), effective_cost=Decimal("0.03")
        )
        DailyCostFactory(
            day=day,
            account=gcp,
            team=ads,
            billed_cost=Decimal("5.00"),
            effective_cost=Decimal("5.00"),
            billing_currency="EUR",
            service_name="Vertex AI",
        )
    # Outside the range: never counted.
    DailyCostFactory(day=dt.date(2026, 9, 30), account=aws, team=search, billed_cost=Decimal("999.99"))
    lead = UserFactory(username="lead", roles=["team_lead"])
    MembershipFactory(user=lead, team=search, role="lead")
    return {"finance": UserFactory(username="finance", roles=["finance"]), "lead": lead}


def _get(user, query: str):
    client = Client()
    client.force_login(user)
    return client.get(f"/explorer/?{query}")


def _table(html: str) -> list[list[str]]:
    """The explorer table as text cells (header, body, totals), tags stripped."""
    table = html[html.index('<table class="data-table" id="explorer-table"') : html.index("</table>")]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S)
        rows.append([re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells])
    return rows


def test_it_groups_by_team_per_week_to_the_cent(world):
    response = _get(world["finance"], f"{RANGE}&group_by=team&granularity=week")
    assert response.status_code == 200
    table = _table(response.content.decode())
    assert table[0] == ["Team", "Week of 2026-09-28", "Week of 2026-10-05", "Total"]
    assert table[1] == ["search", "$200.20", "$100.10", "$300.30"]
    assert table[2] == ["ads", "$80.02", "$40.01", "$120.03"]
    assert table[3] == ["(none)", "$0.06", "$0.03", "$0.09"]
    assert table[4] == ["Total", "$280.28", "$140.14", "$420.42"]
    # EUR is never added to USD: it is named, and shown when chosen.
    assert "billed in EUR" in response.content.decode()
    eur = _table(
        _get(world["finance"], f"{RANGE}&group_by=team&granularity=month&currency=EUR").content.decode()
    )
    assert eur[1:] == [["ads", "€15.00", "€15.00"], ["Total", "€15.00", "€15.00"]]


def test_its_weeks_to_the_end_date_are_the_7_days_to_the_end_and_the_7_before(world):
    """14 days ending on a Wednesday: two columns of 7 days, not the Monday weeks (2 + 7 + 5 days); a
    range that is no whole number of weeks starts with a shorter period, labelled with its days."""
    table = _table(_get(world["finance"], f"{RANGE}&group_by=team&granularity=week_to_end").content.decode())
    assert table[0] == ["Team", "2026-10-01 – 2026-10-07", "2026-10-08 – 2026-10-14", "Total"]
    assert table[1] == ["search", "$200.20", "$100.10", "$300.30"]
    assert table[-1] == ["Total", "$280.28", "$140.14", "$420.42"]
    query = "start=2026-10-02&end=2026-10-13&group_by=team&granularity=week_to_end"
    table = _table(_get(world["finance"], query).content.decode())
    assert table[0] == ["Team", "2026-10-02 – 2026-10-06", "2026-10-07 – 2026-10-13", "Total"]
    assert table[1] == ["search", "$100.10", "$100.10", "$200.20"]


def test_it_shows_amortized_cost_and_filters_by_any_dimension(world):
    response = _get(
        world["finance"], f"{RANGE}&group_by=pricing_mode&granularity=month&cost=amortized&f_provider=aws"
    )
    table = _table(response.content.decode())
    assert table[1] == ["spot", "$270.15", "$270.15"]
    assert table[2] == ["(none)", "$0.09", "$0.09"]
    response = _get(world["finance"], f"{RANGE}&group_by=service&granularity=month&f_team=(none)")
    assert _table(response.content.decode())[1:] == [
        ["AmazonSageMaker", "$0.09", "$0.09"],
        ["Total", "$0.09", "$0.09"],
    ]


def test_a_lead_sees_only_their_teams(world):
    html = _get(world["lead"], f"{RANGE}&group_by=team&granularity=month").content.decode()
    assert [row[0] for row in _table(html)[1:]] == ["search", "Total"]
    assert "ads" not in html.split('id="explorer-table"')[1]


def test_the_csv_is_exactly_the_table(world):
    query = f"{RANGE}&group_by=provider&granularity=day&f_team=search"
    table = _table(_get(world["finance"], query).content.decode())
    response = _get(world["finance"], query + "&format=csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["Provider", "2026-10-01", "2026-10-02", "2026-10-08", "Total (USD)"]
    assert rows[1] == ["AWS", "100.10", "100.10", "100.10", "300.30"]
    # The same cells as the HTML table, in the same order, formatting aside.
    assert len(rows) == len(table)
    for csv_row, table_row in zip(rows[1:], table[1:], strict=True):
        assert [Decimal(cell) for cell in csv_row[1:]] == [
            Decimal(cell.replace("$", "").replace(",", "")) for cell in table_row[1:]
        ]


def test_it_opens_on_the_latest_billed_days_by_default(world):
    html = _get(world["finance"], "").content.decode()
    table = _table(html)
    assert table[0][0] == "Provider" and table[0][-2] == "2026-10-08"
    # 30 days back from 8 October reach 30 September's 999.99 as well.
    assert table[-1][-1] == "$1,420.41"


def test_it_says_what_was_wrong_with_bad_settings_and_falls_back(world):
    html = _get(world["finance"], "start=2026-10-14&end=2026-10-01&group_by=nonsense").content.decode()
    assert "The start date must be on or before the end date." in html
    assert "Group by: Select a valid choice" in html


def test_its_queries_do_not_grow_with_rows(world, django_assert_max_num_queries):
    aws = CloudAccountFactory(slug="aws-more", provider="aws")
    for index in range(40):
        DailyCostFactory(
            day=dt.date(2026, 10, 3),
            account=aws,
            team=TeamFactory(slug=f"t{index}"),
            billed_cost=Decimal("1.00"),
        )
    client = Client()
    client.force_login(world["finance"])
    # session, user, the role's permissions (scope), the filter choices, the tag keys and values,
    # the latest day, the aggregate, and the scope check: nine whatever the number of groups.
    with django_assert_max_num_queries(9):
        response = client.get(f"/explorer/?{RANGE}&group_by=team")
    assert response.status_code == 200


def test_its_figure_is_the_same_built_checked_or_unchecked(world, page_figures_checked_and_unchecked):
    client = Client()
    client.force_login(world["finance"])
    checked, unchecked = page_figures_checked_and_unchecked(client, f"/explorer/?{RANGE}&group_by=team")
    assert checked["explorer"]["data"]
    assert unchecked == checked


def _choices_by_distinct(user) -> dict:
    """The filter options as plain DISTINCT reads of the visible rows give them (the reference the
    index walks must equal)."""
    from attribution.costs.explorer import DIMENSIONS
    from attribution.models import DailyCost, DailyTagCost

    columns = [column for _, column in DIMENSIONS.values()]
    values: dict[str, set] = {name: set() for name in DIMENSIONS}
    currencies, tags = set(), {}
    for row in DailyCost.objects.restrict(user).values_list(*columns, "billing_currency").distinct():
        for name, value in zip(DIMENSIONS, row[:-1], strict=True):
            if value not in (None, ""):
                values[name].add(str(value))
        currencies.add(row[-1])
    for key, value in DailyTagCost.objects.restrict(user).values_list("tag_key", "tag_value"):
        tags.setdefault(key, set()).add(value)
    choices = {name: sorted(found) for name, found in values.items()}
    choices["currency"] = sorted(currencies)
    choices["tags"] = {key: sorted(found) for key, found in sorted(tags.items())}
    return choices


def test_the_filter_options_are_the_values_of_the_rows_each_role_may_see(world):
    from django.contrib.auth.models import AnonymousUser

    from attribution.costs.explorer import explorer_filter_choices
    from attribution.models import DailyCost, DailyTagCost

    # Tuples the index walk must step through: NULL and blank columns between set ones, a team
    # whose id is the lowest, ties on every column but the last, and tags on several teams.
    first_team = TeamFactory(slug="aaa-first")
    azure = CloudAccountFactory(slug="azure-prod", provider="azure")
    other = DeploymentFactory(slug="other-dep", accelerator="a100", pricing_mode="reserved")
    for team, deployment, sku, region, currency in [
        (first_team, None, "", "", "USD"),
        (first_team, None, "", "", "EUR"),
        (None, other, "sku-1", "westeurope", "USD"),
        (world["lead"].memberships.get().team, other, "sku-2", "", "GBP"),
    ]:
        DailyCostFactory(
            account=azure,
            team=team,
            deployment=deployment,
            sku_id=sku,
            region_id=region,
            billing_currency=currency,
            charge_category="Purchase",
        )
    for row in DailyCost.objects.all():
        for key, value in (("env", "prod"), ("pool", row.account.slug)):
            DailyTagCost.objects.create(
                day=row.day,
                account=row.account,
                billing_period_start=row.billing_period_start,
                provider=row.provider,
                team=row.team,
                model=row.model,
                deployment=row.deployment,
                charge_category=row.charge_category,
                billing_currency=row.billing_currency,
                tag_key=key,
                tag_value=value if row.team_id else "untagged-team",
            )
    viewer = UserFactory(username="viewer", roles=["viewer"])
    MembershipFactory(user=viewer, team=first_team)
    nobody = UserFactory(username="nobody", roles=["viewer"])
    for user in (world["finance"], world["lead"], viewer, nobody):
        expected = _choices_by_distinct(user)
        assert explorer_filter_choices(user=user) == expected, user.username
    assert explorer_filter_choices(user=world["finance"])["region"] == ["us-east-1", "westeurope"]
    assert explorer_filter_choices(user=world["finance"])["currency"] == ["EUR", "GBP", "USD"]
    assert "untagged-team" in explorer_filter_choices(user=world["finance"])["tags"]["pool"]
    # A lead sees their team's options only: no other team, no spend without a team.
    lead = explorer_filter_choices(user=world["lead"])
    assert lead["team"] == ["search"] and lead["currency"] == ["GBP", "USD"]
    assert lead["tags"] == {"env": ["prod"], "pool": ["aws-prod", "azure-prod"]}
    assert explorer_filter_choices(user=viewer)["team"] == ["aaa-first"]
    assert explorer_filter_choices(user=nobody)["provider"] == []
    assert explorer_filter_choices(user=AnonymousUser())["tags"] == {}


def _figure(user, query: str) -> dict:
    html = _get(user, query).content.decode()
    found = re.search(r'<script id="figures" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))["explorer"]


def _tick_dates(axis: dict) -> list[dt.date]:
    """The days the axis labels: from tick0 every dtick, within the axis range."""
    low, high = (dt.datetime.fromisoformat(bound) for bound in axis["range"])
    tick = dt.datetime.fromisoformat(axis["tick0"])
    ticks = []
    while tick <= high:
        if tick >= low:
            ticks.append(tick.date())
        if isinstance(axis["dtick"], str):  # "M<n>": every n months
            months = tick.month - 1 + int(axis["dtick"][1:])
            tick = tick.replace(year=tick.year + months // 12, month=months % 12 + 1)
        else:
            tick += dt.timedelta(milliseconds=axis["dtick"])
    return ticks


@pytest.mark.parametrize(
    ("granularity", "labels", "first_tick", "step_days"),
    [
        # 90 days: a label every other week, on Mondays (a label a day crowded them at 1280 px).
        ("day", 7, dt.date(2026, 7, 6), 14),
        # 14 weeks (Mondays 2026-06-29 ... 2026-09-28): every other week.
        ("week", 7, dt.date(2026, 6, 29), 14),
        # 13 periods of 7 days back from 29 September (a Tuesday), the first from 1 July: every other.
        ("week_to_end", 7, dt.date(2026, 7, 1), 14),
        # 3 months: each month, on its first day.
        ("month", 3, dt.date(2026, 7, 1), None),
    ],
)
def test_its_time_axis_labels_a_dozen_periods_at_most(world, granularity, labels, first_tick, step_days):
    aws = CloudAccount.objects.get(slug="aws-prod")
    start = dt.date(2026, 7, 2)  # a Thursday
    for offset in range(90):
        DailyCostFactory(day=start + dt.timedelta(days=offset), account=aws, billed_cost=Decimal("1.00"))
    figure = _figure(world["finance"], f"start=2026-07-02&end=2026-09-29&granularity={granularity}")
    axis = figure["layout"]["xaxis"]
    assert axis["type"] == "date"
    assert axis["tickmode"] == "linear"
    ticks = _tick_dates(axis)
    assert len(ticks) == labels
    assert ticks[0] == first_tick
    if step_days:
        assert ticks[1] - ticks[0] == dt.timedelta(days=step_days)
    # Every bar is on the axis: its periods are the table's, each inside the range.
    bars = figure["data"][0]["x"]
    low, high = (dt.datetime.fromisoformat(bound) for bound in axis["range"])
    assert all(low < dt.datetime.fromisoformat(day) < high for day in bars)
