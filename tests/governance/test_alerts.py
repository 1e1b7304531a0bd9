"""Signals from attribution become deduplicated governance alerts."""

from __future__ import annotations

import datetime as dt

import pytest

from attribution import signals
from governance.models import Alert

pytestmark = pytest.mark.django_db


def test_a_conservation_failure_raises_one_critical_alert_however_often_it_is_sent():
    for _ in range(3):
        signals.allocation_conservation_failed.send(
            sender=None,
            account_id=7,
            day=dt.date(2026, 10, 3),
            currency="USD",
            column="billed_cost",
            billed="100.00",
            allocated="99.99",
        )
    alert = Alert.objects.get()
    assert alert.kind == "conservation"
    assert alert.severity == "critical"
    assert "billed 100.00" in alert.message and "99.99" in alert.message


def test_a_restatement_after_close_raises_a_warning_naming_the_period():
    signals.period_restated_after_close.send(
        sender=None, account_id=3, billing_period_start=dt.date(2026, 9, 1), old_version="a", new_version="b"
    )
    alert = Alert.objects.get()
    assert alert.kind == "restatement"
    assert "2026-09" in alert.message
