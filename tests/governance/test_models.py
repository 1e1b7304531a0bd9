"""Invariants of the governance tables: budgets, quotas, channels."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from governance.models import Budget, NotificationChannel, Quota
from tests.factories import BudgetFactory, TeamFactory

pytestmark = pytest.mark.django_db


def assert_integrity_error(create, constraint: str) -> None:
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        create()


def test_it_accepts_a_custom_budget_with_both_ends_in_order():
    budget = BudgetFactory(
        period="custom", custom_start=dt.date(2026, 10, 1), custom_end=dt.date(2026, 12, 31)
    )
    assert Budget.objects.get(pk=budget.pk).custom_end == dt.date(2026, 12, 31)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (dt.date(2026, 10, 1), None),
        (None, dt.date(2026, 10, 31)),
        (None, None),
        (dt.date(2026, 10, 31), dt.date(2026, 10, 1)),
        (dt.date(2026, 10, 1), dt.date(2026, 10, 1)),
    ],
)
def test_it_rejects_a_custom_budget_without_an_ordered_range(start, end):
    assert_integrity_error(
        lambda: BudgetFactory(period="custom", custom_start=start, custom_end=end),
        "budget_custom_range_valid",
    )


def test_it_rejects_custom_dates_on_a_calendar_period():
    assert_integrity_error(
        lambda: BudgetFactory(
            period="month", custom_start=dt.date(2026, 10, 1), custom_end=dt.date(2026, 11, 1)
        ),
        "budget_custom_range_valid",
    )


def test_it_rejects_a_budget_of_zero_or_less():
    assert_integrity_error(lambda: BudgetFactory(amount=Decimal("0")), "budget_amount_positive")
    assert_integrity_error(lambda: BudgetFactory(amount=Decimal("-5")), "budget_amount_positive")


def test_it_rejects_a_budget_currency_that_is_not_iso():
    assert_integrity_error(lambda: BudgetFactory(currency="eur"), "budget_currency_iso")


def test_it_rejects_two_budgets_of_the_same_name_for_the_organisation():
    BudgetFactory(name="Inference 2026", team=None)
    # team NULL (organisation-wide) must still collide.
    assert_integrity_error(lambda: BudgetFactory(name="Inference 2026", team=None), "budget_unique_name")


@pytest.mark.parametrize("limit", [0, -1])
def test_it_rejects_a_quota_limit_that_is_not_positive(limit):
    team = TeamFactory()
    assert_integrity_error(
        lambda: Quota.objects.create(team=team, metric="tokens", window="minute", limit=limit),
        "quota_limit_positive",
    )


def test_it_rejects_a_duplicate_quota_for_all_models_of_a_team():
    team = TeamFactory()
    Quota.objects.create(team=team, model=None, metric="requests", window="day", limit=1000)
    assert_integrity_error(
        lambda: Quota.objects.create(team=team, model=None, metric="requests", window="day", limit=5),
        "quota_unique",
    )


@pytest.mark.parametrize("secret", ["hunter2", "xoxb-123-456", "env:", "env:1BAD", "file:relative/path"])
def test_it_rejects_a_channel_secret_that_is_not_a_reference(secret):
    assert_integrity_error(
        lambda: NotificationChannel.objects.create(
            name="finance-slack",
            kind="slack",
            target="https://hooks.slack.example/T0",
            secret_reference=secret,
        ),
        "channel_secret_is_reference",
    )


@pytest.mark.parametrize("reference", ["", "env:SLACK_SIGNING_SECRET", "file:/run/secrets/webhook"])
def test_it_accepts_a_channel_secret_reference(reference):
    channel = NotificationChannel.objects.create(
        name=f"hook-{reference}", kind="webhook", target="https://hooks.example/x", secret_reference=reference
    )
    assert channel.pk is not None
