"""Exchange rates: loading, the rate of each charge date, errors that say what is missing, and
conversions that record the rate they used."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from attribution.currency.services import (
    ExchangeRateError,
    ExchangeRateRowError,
    allocated_costs_convert,
    allocated_costs_missing_rates,
    convert,
    exchange_rates_load,
    rate_for,
)
from attribution.models import AllocatedCost, ExchangeRate
from tests.factories import CloudAccountFactory, TeamFactory

pytestmark = pytest.mark.django_db

MON, TUE, WED = dt.date(2026, 10, 19), dt.date(2026, 10, 20), dt.date(2026, 10, 21)


def _rates(*rows, source="ecb") -> int:
    return exchange_rates_load(
        rows=[{"date": d.isoformat(), "from": f, "to": t, "rate": r} for d, f, t, r in rows], source=source
    )


def test_it_loads_and_upserts_by_date_and_pair():
    assert _rates((MON, "EUR", "USD", "1.0842"), (TUE, "eur", "usd", "1.0817")) == 2
    assert _rates((TUE, "EUR", "USD", "1.0900")) == 1  # changed
    assert _rates((TUE, "EUR", "USD", "1.0900")) == 0  # identical: nothing to do
    assert ExchangeRate.objects.count() == 2
    assert ExchangeRate.objects.get(date=TUE).rate == Decimal("1.090000000000")


def test_it_rejects_bad_rows_naming_each_one_and_loads_nothing():
    rows = [
        {"date": "2026-10-19", "from": "EUR", "to": "USD", "rate": "1.08"},
        {"date": "2026-10-32", "from": "EUR", "to": "USD", "rate": "1.08"},
        {"date": "2026-10-19", "from": "EURO", "to": "USD", "rate": "1.08"},
        {"date": "2026-10-19", "from": "GBP", "to": "USD", "rate": "-1"},
        {"date": "2026-10-19", "from": "JPY", "to": "USD", "rate": "abc"},
        {"date": "2026-10-19", "from": "USD", "to": "USD", "rate": "1"},
    ]
    with pytest.raises(ExchangeRateRowError) as caught:
        exchange_rates_load(rows=rows, source="test")
    errors = caught.value.errors
    assert len(errors) == 5
    assert errors[0].startswith("row 2: date '2026-10-32'")
    assert "row 3: from currency 'EURO' is not an ISO 4217 code" in errors[1]
    assert "row 4: rate '-1' must be a positive number" in errors[2]
    assert "row 5: rate 'abc' is not a decimal number" in errors[3]
    assert "row 6" in errors[4] and "needs no rate" in errors[4]
    assert ExchangeRate.objects.count() == 0


def test_it_uses_the_rate_of_the_charge_date():
    _rates((MON, "EUR", "USD", "1.0842"), (TUE, "EUR", "USD", "1.0817"))
    assert rate_for(day=MON, from_currency="EUR", to_currency="USD") == (Decimal("1.084200000000"), MON)
    assert rate_for(day=TUE, from_currency="EUR", to_currency="USD") == (Decimal("1.081700000000"), TUE)
    # No rate on Wednesday (yet): the latest earlier one, and the result says which date it is.
    assert rate_for(day=WED, from_currency="EUR", to_currency="USD") == (Decimal("1.081700000000"), TUE)


def test_it_never_converts_at_a_guessed_rate():
    _rates((MON, "EUR", "USD", "1.0842"))
    with pytest.raises(ExchangeRateError, match=r"No GBP->USD exchange rate .* 2026-10-20"):
        rate_for(day=TUE, from_currency="GBP", to_currency="USD")
    # Before the first rate there is nothing either.
    with pytest.raises(ExchangeRateError, match="load_exchange_rates"):
        rate_for(day=MON - dt.timedelta(days=1), from_currency="EUR", to_currency="USD")
    # The same currency needs no rate.
    assert rate_for(day=TUE, from_currency="USD", to_currency="USD") == (Decimal(1), None)


@override_settings(EXCHANGE_RATE_MAX_AGE_DAYS=3)
def test_it_refuses_a_rate_older_than_the_staleness_window():
    _rates((MON, "EUR", "USD", "1.0842"))
    assert rate_for(day=MON + dt.timedelta(days=3), from_currency="EUR", to_currency="USD")[1] == MON
    with pytest.raises(ExchangeRateError, match="up to 3 days before 2026-10-23"):
        rate_for(day=MON + dt.timedelta(days=4), from_currency="EUR", to_currency="USD")


def test_a_conversion_records_the_rate_and_its_date():
    _rates((MON, "EUR", "USD", "1.0842"))
    conversion = convert(amount=Decimal("100.00"), day=TUE, from_currency="EUR", to_currency="USD")
    assert conversion.amount == Decimal("108.42")
    assert conversion.rate == Decimal("1.0842")
    assert conversion.rate_date == MON


def _allocated(account, day, currency, billed, effective=None):
    return AllocatedCost.objects.create(
        day=day,
        account=account,
        billing_period_start=day.replace(day=1),
        provider="azure",
        team=TeamFactory(slug="search"),
        charge_category="Usage",
        billing_currency=currency,
        billed_cost=Decimal(billed),
        effective_cost=Decimal(effective or billed),
        allocated_method_id="direct",
    )


def test_allocated_costs_convert_at_each_charge_days_rate():
    account = CloudAccountFactory(slug="azure-eu", provider="azure", billing_currency="EUR")
    _rates((MON, "EUR", "USD", "1.0842"), (TUE, "EUR", "USD", "1.0817"))
    monday = _allocated(account, MON, "EUR", "200.00", "190.00")
    tuesday = _allocated(account, TUE, "EUR", "200.00")
    in_usd = _allocated(account, TUE, "USD", "50.00")
    # Two weeks later no rate is recent enough: left unconverted and named, not guessed.
    late_day = TUE + dt.timedelta(days=14)
    late = _allocated(account, late_day, "EUR", "10.00")

    converted = allocated_costs_convert(account_id=account.pk, days=[MON, TUE, late_day])
    assert converted == 3
    for row in (monday, tuesday, in_usd, late):
        row.refresh_from_db()
    assert (monday.exchange_rate, monday.billed_cost_reporting, monday.effective_cost_reporting) == (
        Decimal("1.0842"),
        Decimal("216.84"),
        Decimal("205.998"),
    )
    assert monday.reporting_currency == "USD"
    assert (tuesday.exchange_rate, tuesday.billed_cost_reporting) == (Decimal("1.0817"), Decimal("216.34"))
    assert (in_usd.exchange_rate, in_usd.billed_cost_reporting) == (Decimal(1), Decimal("50.00"))
    assert late.exchange_rate is None and late.billed_cost_reporting is None and late.reporting_currency == ""
    assert allocated_costs_missing_rates(account_id=account.pk, days=[MON, TUE, late_day]) == [
        (late_day, "EUR")
    ]


def test_the_command_loads_a_csv(tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text("date,from,to,rate\n2026-10-19,EUR,USD,1.0842\n2026-10-19,GBP,USD,1.2950\n")
    call_command("load_exchange_rates", str(path), "--source", "ecb")
    assert set(ExchangeRate.objects.values_list("from_currency", "rate", "source")) == {
        ("EUR", Decimal("1.0842"), "ecb"),
        ("GBP", Decimal("1.2950"), "ecb"),
    }


def test_the_command_rejects_a_bad_file_with_line_numbers(tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text("date,from,to,rate\n2026-10-19,EUR,USD,1.0842\n2026-10-19,XXX,USD,0\n")
    with pytest.raises(CommandError, match=r"row 3: from currency 'XXX' is not an ISO 4217 code, rate '0'"):
        call_command("load_exchange_rates", str(path))
    assert ExchangeRate.objects.count() == 0
    path.write_text("day,currency,rate\n")
    with pytest.raises(CommandError, match="missing column"):
        call_command("load_exchange_rates", str(path))
