"""The Overview's data version moves with every statement that changes a row of what the page
reads, and only then: a statement that matches nothing (a fast delete or a filtered update of an
empty range, which Django and the rollups run often) must not invalidate every cached Overview."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

from attribution.costs.data_version import data_version
from attribution.models import DailyCost, Team
from governance.models import Alert
from tests.factories import DailyCostFactory, TeamFactory

pytestmark = pytest.mark.django_db


def _sql(statement: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement)


def test_an_update_of_no_row_leaves_the_version_and_of_one_row_bumps_it():
    team = TeamFactory(slug="alpha", name="Alpha")
    before = data_version()
    assert Team.objects.filter(slug="no-such-team").update(name="Nobody") == 0
    assert data_version() == before
    assert Team.objects.filter(pk=team.pk).update(name="Alpha Renamed") == 1
    assert data_version() != before


def test_a_delete_of_no_row_leaves_the_version_and_of_one_row_bumps_it():
    cost = DailyCostFactory(billed_cost=Decimal("12.34"))
    before = data_version()
    _sql("DELETE FROM attribution_dailycost WHERE billed_cost = 99.99")  # raw SQL: the trigger decides
    assert data_version() == before
    assert DailyCost.objects.filter(pk=cost.pk).delete()[0] == 1
    assert data_version() != before


def test_an_insert_of_no_row_leaves_the_version_and_of_a_row_bumps_it():
    DailyCostFactory()
    before = data_version()
    _sql("INSERT INTO attribution_dailycost SELECT * FROM attribution_dailycost WHERE false")
    assert data_version() == before
    DailyCostFactory(day=DailyCost.objects.get().day.replace(day=2))
    assert data_version() != before


def test_alerts_bump_it_only_when_a_row_changes():
    alert = Alert.objects.create(kind="anomaly", message="spike", dedup_key="spike-version")
    before = data_version()
    assert Alert.objects.filter(dedup_key="no-such-alert").update(message="none") == 0
    assert data_version() == before
    assert Alert.objects.filter(pk=alert.pk).update(message="spike, resolved") == 1
    assert data_version() != before


def test_a_truncate_bumps_it():
    before = data_version()
    _sql("TRUNCATE attribution_usagedaily")  # no transition table: bumps without looking
    assert data_version() != before
