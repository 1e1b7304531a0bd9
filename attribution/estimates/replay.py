"""Re-live the last days of billing the way production lives them, on data already loaded.

Bills arrive one to two days after the day they bill. A fresh install ingests all of its history
at once, so no day was ever estimated first and billed later, and the accuracy figures have
nothing to compare. `estimates_replay` walks the last `days` billed days in time order: each night
the bills due that night land (their estimates are reconciled and calibration learns from them at
that moment), then every day still waiting for its bill is estimated from what was known then —
usage, price cards, unit costs of days already billed, the calibration factors learned so far.
Each day's bill lands `lag` days after it, 1 or 2, drawn from the day itself (stable across runs).

It only writes SpendEstimate and EstimateCalibration rows, replacing those of the replayed days
(and factors learned after the replay's start), so running it again gives the same result.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Max

from attribution.estimates.services import estimates_reconcile, estimates_refresh
from attribution.models import DailyCost, EstimateCalibration, SpendEstimate

UTC = dt.UTC
ESTIMATE_AT = dt.time(0, 5)
LAND_AT = dt.time(6, 0)


def bill_lag_days(day: dt.date) -> int:
    """1 or 2, stable per day."""
    return 1 + hashlib.sha256(day.isoformat().encode()).digest()[0] % 2


@dataclass
class ReplaySummary:
    days: list[str] = field(default_factory=list)
    estimates_written: int = 0
    reconciled: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def estimates_replay(*, days: int = 14, last_day: dt.date | None = None) -> ReplaySummary:
    """Replay the `days` billed days ending at `last_day` (default: the latest billed day)."""
    last_day = last_day or DailyCost.objects.aggregate(day=Max("day"))["day"]
    summary = ReplaySummary()
    if last_day is None or days < 1:
        return summary
    replayed = [last_day - dt.timedelta(days=offset) for offset in range(days - 1, -1, -1)]
    landing = {day: day + dt.timedelta(days=bill_lag_days(day)) for day in replayed}
    first = replayed[0]
    with transaction.atomic():
        SpendEstimate.objects.filter(day__in=replayed).delete()
        EstimateCalibration.objects.filter(
            learned_at__gte=dt.datetime.combine(first + dt.timedelta(days=1), dt.time(), tzinfo=UTC)
        ).delete()
    # Bills of days before the replay are known from its start.
    known_through = first - dt.timedelta(days=1)
    night = first + dt.timedelta(days=1)
    while night <= max(landing.values()):
        # Just after midnight the day that ended, and every day still waiting for its bill, is
        # estimated from what is known then; bills land later that morning.
        waiting = [day for day in replayed if day < night and landing[day] >= night]
        if waiting:
            result = estimates_refresh(
                days=waiting,
                now=dt.datetime.combine(night, ESTIMATE_AT, tzinfo=UTC),
                replay_known_through=known_through,
            )
            summary.estimates_written += result.estimates_written
        landed = [day for day in replayed if landing[day] == night]
        if landed:
            summary.reconciled += estimates_reconcile(
                days=landed, now=dt.datetime.combine(night, LAND_AT, tzinfo=UTC)
            )
            # Unit costs are known for the days up to the first one still waiting for its bill.
            for day in replayed:
                if landing[day] > night:
                    break
                known_through = day
        night += dt.timedelta(days=1)
    summary.days = [day.isoformat() for day in replayed]
    return summary
