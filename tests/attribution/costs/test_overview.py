"""Overview selectors, called directly: ranges, currencies, scoping, figure shapes."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder

from attribution.costs import overview as selectors
from attribution.costs.overview import OverviewFilters
from tests.factories import (
    CloudAccountFactory,
    DailyCostFactory,
    MembershipFactory,
    ServedModelFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 29)


def _build(user, **filters):
    return selectors.overview_build(
        user=user, filters=OverviewFilters(**filters), currency="USD", today=TODAY
    )


def test_it_defaults_to_90_days_ending_at_the_latest_visible_day():
    team, other = TeamFactory(slug="a"), TeamFactory(slug="b")
    viewer = UserFactory(roles=["viewer"])
    MembershipFactory(user=viewer, team=team)
    DailyCostFactory(day=dt.date(2026, 9, 30), team=team)
    DailyCostFactory(day=dt.date(2026, 10, 15), team=other)  # later, but not the viewer's

    overview = _build(viewer)
    assert (overview.start, overview.end) == (dt.date(2026, 7, 3), dt.date(2026, 9, 30))
    assert selectors.dailycost_latest_day(user=viewer) == dt.date(2026, 9, 30)
    assert _build(UserFactory(roles=["finance"])).end == dt.date(2026, 10, 15)


def test_it_ends_the_default_range_today_when_there_is_no_data():
    overview = _build(UserFactory(roles=["admin"]))
    assert overview.end == TODAY
    assert overview.start == TODAY - dt.timedelta(days=89)
    assert not overview.has_data
    assert overview.unallocated_share is None


def test_it_computes_month_to_date_from_the_first_of_the_end_month_even_outside_the_range():
    finance = UserFactory(roles=["finance"])
    DailyCostFactory(day=dt.date(2026, 10, 2), billed_cost=Decimal("1.01"), effective_cost=Decimal("1.00"))
    DailyCostFactory(day=dt.date(2026, 10, 9), billed_cost=Decimal("2.02"), effective_cost=Decimal("2.00"))
    DailyCostFactory(day=dt.date(2026, 9, 30), billed_cost=Decimal("4.04"), effective_cost=Decimal("4.00"))

    overview = _build(finance, start=dt.date(2026, 10, 5), end=dt.date(2026, 10, 9))
    assert overview.billed_cost == Decimal("2.02")
    assert overview.month_start == dt.date(2026, 10, 1)
    assert overview.month_to_date_billed == Decimal("3.03")
    assert overview.month_to_date_effective == Decimal("3.00")


def test_it_never_adds_a_currency_it_cannot_convert_and_converts_the_rest():
    from attribution.models import ExchangeRate

    finance = UserFactory(roles=["finance"])
    eur = CloudAccountFactory(slug="azure-eu", provider="azure", billing_currency="EUR")
    DailyCostFactory(day=dt.date(2026, 10, 1), billed_cost=Decimal("10.00"), line_items=4)
    DailyCostFactory(
        day=dt.date(2026, 10, 1),
        account=eur,
        provider="azure",
        billing_currency="EUR",
        billed_cost=Decimal("7.50"),
        effective_cost=Decimal("7.00"),
        line_items=6,
    )

    # No EUR rate: the EUR cost is in no figure (never counted as USD) and is named as missing.
    overview = _build(finance)
    assert overview.billed_cost == Decimal("10.00")
    [note] = overview.currency_notes
    assert (note.currency, note.missing, note.missing_days) == (
        "EUR",
        Decimal("7.50"),
        {dt.date(2026, 10, 1)},
    )
    assert overview.line_items == 10  # a count, so it adds up across currencies
    assert [trace["name"] for trace in overview.figures["by_provider"]["data"]] == ["AWS"]

    # With the day's rate it is converted everywhere, and the note says from what to what.
    ExchangeRate.objects.create(
        date=dt.date(2026, 10, 1), from_currency="EUR", to_currency="USD", rate=Decimal("1.0817")
    )
    overview = _build(finance)
    assert overview.billed_cost == Decimal("10.00") + Decimal("8.112750")
    assert overview.effective_cost == Decimal("10.00") + Decimal("7.5719")
    [note] = overview.currency_notes
    assert (note.converted_from, note.converted_to, note.missing) == (Decimal("7.50"), Decimal("8.11275"), 0)
    assert sorted(trace["name"] for trace in overview.figures["by_provider"]["data"]) == ["AWS", "Azure"]


def test_it_scopes_rows_and_filter_choices_by_role():
    alpha, beta = TeamFactory(slug="alpha", name="Alpha"), TeamFactory(slug="beta", name="Beta")
    lead = UserFactory(roles=["team_lead"])
    MembershipFactory(user=lead, team=alpha, role="lead")
    admin = UserFactory(roles=["admin"])
    DailyCostFactory(team=alpha, billed_cost=Decimal("1.10"))
    DailyCostFactory(team=beta, billed_cost=Decimal("2.20"), region_id="b")
    DailyCostFactory(team=None, billed_cost=Decimal("3.30"), region_id="c")

    lead_view, admin_view = _build(lead), _build(admin)
    assert lead_view.billed_cost == Decimal("1.10")
    assert lead_view.unallocated_visible is False
    assert admin_view.billed_cost == Decimal("6.60")
    assert admin_view.unallocated_visible is True
    assert admin_view.unallocated_share.quantize(Decimal("0.01")) == Decimal("50.00")

    assert selectors.overview_filter_choices(user=lead)["teams"] == [(str(alpha.pk), "Alpha")]
    assert selectors.overview_filter_choices(user=admin)["teams"] == [
        (str(alpha.pk), "Alpha"),
        (str(beta.pk), "Beta"),
        ("unallocated", "Unallocated"),
    ]
    # A lead asking for the unallocated slice gets nothing rather than other people's cost.
    assert _build(lead, team="unallocated").billed_cost == Decimal("0")
    assert _build(lead, team=str(beta.pk)).billed_cost == Decimal("0")


def test_it_zero_fills_the_team_areas_over_the_whole_range():
    team = TeamFactory(slug="alpha", name="Alpha")
    DailyCostFactory(day=dt.date(2026, 10, 3), team=team, billed_cost=Decimal("5.00"))
    overview = _build(UserFactory(roles=["admin"]), start=dt.date(2026, 10, 1), end=dt.date(2026, 10, 5))
    (trace,) = overview.figures["by_team"]["data"]
    assert trace["x"] == ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05"]
    assert trace["y"] == [0.0, 0.0, 5.0, 0.0, 0.0]
    assert trace["stackgroup"] == "teams"
    # Both time charts span exactly the selected range.
    assert overview.figures["by_team"]["layout"]["xaxis"]["range"] == [
        "2026-09-30T12:00:00",
        "2026-10-05T12:00:00",
    ]


def test_it_labels_models_and_ranks_deployments():
    llama, mistral = ServedModelFactory(name="llama"), ServedModelFactory(name="mistral")
    DailyCostFactory(model=llama, billed_cost=Decimal("9.00"))
    DailyCostFactory(model=mistral, billed_cost=Decimal("3.00"), region_id="b")
    DailyCostFactory(model=None, billed_cost=Decimal("1.00"), region_id="c")
    overview = _build(UserFactory(roles=["admin"]))
    (trace,) = overview.figures["by_model"]["data"]
    assert trace["orientation"] == "h"
    assert trace["y"] == ["No model", "mistral", "llama"]  # ascending, so the largest is on top
    assert trace["x"] == [1.0, 3.0, 9.0]


def test_it_hands_the_browser_plain_json():
    DailyCostFactory(team=TeamFactory(slug="alpha"))
    overview = _build(UserFactory(roles=["admin"]))
    # json_script uses DjangoJSONEncoder; the figures must not rely on it for Decimals or dates.
    text = json.dumps(overview.figures)
    assert json.loads(text) == json.loads(json.dumps(overview.figures, cls=DjangoJSONEncoder))
    for figure in overview.figures.values():
        assert "template" in figure["layout"]


def test_it_sums_each_figure_in_sql_and_counts_converted_cost_in_every_one():
    """The provider, team and model figures are summed in SQL per figure; cost in another
    currency converts row by row and then counts in each of them, to the cent."""
    from attribution.models import ExchangeRate

    finance = UserFactory(roles=["finance"])
    team = TeamFactory(slug="search", name="Search")
    llama, mistral = ServedModelFactory(name="llama"), ServedModelFactory(name="mistral")
    gcp = CloudAccountFactory(slug="gcp-main", provider="gcp")
    eur = CloudAccountFactory(slug="azure-eu", provider="azure", billing_currency="EUR")
    day, next_day = dt.date(2026, 10, 1), dt.date(2026, 10, 2)
    DailyCostFactory(day=day, team=team, model=llama, billed_cost=Decimal("10.00"), region_id="a")
    DailyCostFactory(day=day, team=team, model=llama, billed_cost=Decimal("0.01"), region_id="b")
    DailyCostFactory(day=day, account=gcp, team=team, model=llama, billed_cost=Decimal("5.00"))
    DailyCostFactory(day=next_day, team=None, model=None, billed_cost=Decimal("2.00"))
    DailyCostFactory(
        day=day,
        account=eur,
        billing_currency="EUR",
        team=team,
        model=mistral,
        billed_cost=Decimal("7.50"),
        effective_cost=Decimal("7.00"),
    )
    ExchangeRate.objects.create(date=day, from_currency="EUR", to_currency="USD", rate=Decimal("1.0817"))

    overview = _build(finance, start=day, end=next_day)
    assert overview.billed_cost == Decimal("25.12275")
    assert overview.unallocated_cost == Decimal("2.00")
    [reason] = overview.unallocated_by_reason
    assert reason.billed_cost == Decimal("2.00")
    by_provider = {trace["name"]: trace["y"] for trace in overview.figures["by_provider"]["data"]}
    assert by_provider == {"AWS": [10.01, 2.0], "Google Cloud": [5.0], "Azure": [8.11275]}
    by_team = {trace["name"]: trace["y"] for trace in overview.figures["by_team"]["data"]}
    assert by_team["Search"] == [23.12275, 0.0]
    assert [name for name in by_team if name.startswith("Unallocated")] != []
    assert sum(values[1] for values in by_team.values()) == 2.0
    (model_trace,) = overview.figures["by_model"]["data"]
    assert dict(zip(model_trace["y"], model_trace["x"], strict=True)) == {
        "No model": 2.0,
        "mistral": 8.11275,
        "llama": 15.01,
    }
