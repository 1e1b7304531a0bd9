"""Settings → Exchange rates: who may see and load rates, filters, the add form and the bulk load
(bad input names the row and stores nothing), the audit trail, and a bounded query count."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from attribution.models import ExchangeRate
from governance.models import AuditEvent
from tests.personas import PERSONAS, personas_create

pytestmark = pytest.mark.django_db
URL = "/settings/exchange-rates/"


@pytest.fixture
def world():
    world = personas_create()
    ExchangeRate.objects.create(date=dt.date(2026, 10, 19), from_currency="EUR", to_currency="USD",
                                rate=Decimal("1.0842"), source="ecb")  # fmt: skip
    ExchangeRate.objects.create(date=dt.date(2026, 10, 20), from_currency="GBP", to_currency="USD",
                                rate=Decimal("1.2931"), source="boe")  # fmt: skip
    return world


# persona: (reads the list, sees and may use the forms)
MATRIX = {
    "admin": (200, True),
    "finance": (200, True),
    "lead": (200, False),
    "other_lead": (200, False),
    "viewer": (200, False),
    "anonymous": (302, False),
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_each_role_sees_the_rates_and_only_admin_and_finance_edit(world, persona):
    status, may_edit = MATRIX[persona]
    client = world["clients"][persona]
    response = client.get(URL)
    assert response.status_code == status
    html = response.content.decode()
    if status == 200:
        assert "1.0842" in html and "1.2931" in html
        assert ('name="form" value="add"' in html) is may_edit
        assert ('name="form" value="load"' in html) is may_edit
        nav = html[html.index('<nav class="sidenav"') :]
        assert 'href="/settings/exchange-rates/"' in nav
    else:
        assert "/login/" in response["Location"]
    posted = client.post(URL, {"form": "add", "date": "2026-10-21", "from_currency": "EUR",
                                       "to_currency": "USD", "rate": "1.0801"})  # fmt: skip
    assert posted.status_code == (302 if may_edit else 302 if persona == "anonymous" else 403)
    assert ExchangeRate.objects.filter(date=dt.date(2026, 10, 21)).exists() is may_edit


def test_it_filters_by_currency_and_date(world):
    client = world["clients"]["viewer"]
    html = client.get(URL, {"from": "EUR"}).content.decode()
    assert "1.0842" in html and "1.2931" not in html
    html = client.get(URL, {"since": "2026-10-20"}).content.decode()
    assert "1.0842" not in html and "1.2931" in html
    html = client.get(URL, {"since": "20.10.2026"}).content.decode()
    assert "Since must be a date (YYYY-MM-DD)" in html and "1.0842" in html
    html = client.get(URL, {"from": "JPY"}).content.decode()
    assert "No rates match these filters." in html


def test_adding_a_rate_is_audited_and_replaces_the_same_day(world):
    client = world["clients"]["finance"]
    values = {"date": "2026-10-19", "from_currency": "eur", "to_currency": "usd", "rate": "1.0850"}
    response = client.post(URL, {"form": "add", "source": "ecb", **values})
    assert response.status_code == 302
    rate = ExchangeRate.objects.get(date=dt.date(2026, 10, 19), from_currency="EUR")
    assert rate.rate == Decimal("1.085")
    event = AuditEvent.objects.get(object_type="attribution.exchangerate", action="update")
    assert event.actor_label == "fiona"
    assert event.changes["before"]["rate"] == "1.084200000000"
    assert "Rate replaced" in client.get(URL).content.decode()


GOOD = {"date": "2026-10-21", "from_currency": "EUR", "to_currency": "USD", "rate": "1.1"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({**GOOD, "rate": "-1"}, "must be a positive"),
        ({**GOOD, "from_currency": "XXQ"}, "not an ISO 4217 code"),
        ({**GOOD, "from_currency": "USD"}, "both USD"),
        ({**GOOD, "date": "21/10/2026"}, "Date: Enter a valid date"),
        ({**GOOD, "rate": "abc"}, "Rate: Enter a number"),
    ],
)  # fmt: skip
def test_a_bad_rate_is_refused_with_a_clear_error_and_nothing_is_stored(world, values, message):
    before = list(ExchangeRate.objects.values_list("date", "from_currency", "to_currency", "rate"))
    response = world["clients"]["admin"].post(URL, {"form": "add", **values})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert list(ExchangeRate.objects.values_list("date", "from_currency", "to_currency", "rate")) == before
    assert not AuditEvent.objects.filter(object_type="attribution.exchangerate").exists()


def test_a_bulk_load_is_one_audited_change(world):
    csv_text = (
        "date,from,to,rate\n2026-10-21,EUR,USD,1.0790\n2026-10-22,EUR,USD,1.0811\n2026-10-19,EUR,USD,1.0842\n"
    )
    upload = SimpleUploadedFile("rates.csv", csv_text.encode(), content_type="text/csv")
    response = world["clients"]["admin"].post(URL, {"form": "load", "file": upload, "source": "ecb"})
    assert response.status_code == 302
    assert ExchangeRate.objects.filter(from_currency="EUR").count() == 3
    assert ExchangeRate.objects.get(date=dt.date(2026, 10, 22)).rate == Decimal("1.0811")
    event = AuditEvent.objects.get(object_type="attribution.exchangerate", action="bulk_load")
    assert event.changes["created"] == 2 and event.changes["updated"] == 0
    assert "Loaded: 2 new, 0 changed, 1 unchanged." in world["clients"]["admin"].get(URL).content.decode()


def test_a_bulk_load_with_one_bad_line_names_it_and_loads_nothing(world):
    text = "date,from,to,rate\n2026-10-21,EUR,USD,1.0790\n2026-10-22,EUR,USD,zero\n"
    response = world["clients"]["finance"].post(URL, {"form": "load", "text": text})
    assert response.status_code == 400
    html = response.content.decode()
    assert "row 3: rate &#x27;zero&#x27; is not a decimal number" in html
    assert not ExchangeRate.objects.filter(date=dt.date(2026, 10, 21)).exists()
    response = world["clients"]["finance"].post(
        URL, {"form": "load", "text": "day,currency,rate\n2026-10-21,EUR,1"}
    )
    assert "missing: date, from, to" in response.content.decode()
    response = world["clients"]["finance"].post(
        URL,
        {
            "form": "load",
        },
    )
    assert "Choose a CSV file or paste CSV text" in response.content.decode()
    assert ExchangeRate.objects.count() == 2


def test_the_list_pages_and_its_queries_do_not_grow(world, django_assert_max_num_queries):
    ExchangeRate.objects.bulk_create(
        ExchangeRate(date=dt.date(2026, 1, 1) + dt.timedelta(days=day), from_currency="JPY",
                     to_currency="USD", rate=Decimal("0.0067"))
        for day in range(120)
    )  # fmt: skip
    client = world["clients"]["finance"]
    with django_assert_max_num_queries(12):
        html = client.get(URL).content.decode()
    assert "Page 1 of 3" in html and "122 rows" in html
    assert "Page 3 of 3" in client.get(URL, {"page": 3}).content.decode()
