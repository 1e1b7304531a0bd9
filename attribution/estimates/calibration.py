"""Calibration: a correction factor per deployment and basis, learned from recent true-ups.

An estimate's basis (a price card, or the deployment's measured unit cost) misses whatever the
bill adds or takes away that the basis does not know: taxes, support fees, a volume discount tier,
a committed-use discount, a price change the card has not caught up with. Those errors are mostly
a steady ratio per deployment, so once a deployment's bills have landed for a few days:

    factor = Σ w·billed / Σ w·uncalibrated estimate     over its last WINDOW_DAYS reconciled days,

with weights halving every HALF_LIFE_DAYS of age, so a step (a new tier, a new price) is followed
within days while one odd day moves the factor little. A factor is applied only when the bias is
steady: |factor − 1| larger than two standard errors of the daily billed / estimated ratios;
otherwise the factor is 1 (misses that go both ways are not a bias). Only days on which the deployment was
estimated on that basis count, and only the *uncalibrated* figures: a factor never learns from its
own output. A new factor is stored as a new EstimateCalibration row (the history) only when it
moved; new estimates are multiplied by the factor in force when they are made
(attribution/estimates/services.py); estimates already reconciled are never rewritten.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from attribution.models import EstimateCalibration, SpendEstimate

WINDOW_DAYS = 14
HALF_LIFE_DAYS = Decimal(3)
# Fewer reconciled days than this say too little to correct anything.
MIN_DAYS = 3
# A factor outside these bounds means the basis is wrong, not biased: leave it to a person.
FACTOR_MIN = Decimal("0.5")
FACTOR_MAX = Decimal("2")
# How many standard errors of the daily ratios a bias must exceed to be corrected.
STEADY_SIGMAS = 2.0
# A change smaller than this is noise: no new history row.
FACTOR_TOLERANCE = Decimal("0.0005")
FACTOR_QUANTUM = Decimal("0.000001")
# Bases whose error a factor can correct (unestimated cells have nothing to scale).
CALIBRATED_BASES = ("unit_cost", "price_card")


@dataclass(frozen=True)
class Factor:
    calibration_id: int
    factor: Decimal


def calibration_factors_current(
    *, deployment_ids: Iterable[int], at: dt.datetime | None = None
) -> dict[tuple[int, str, str], Factor]:
    """The factor in force at `at` per (deployment, basis, currency): the latest learned by then."""
    at = at or timezone.now()
    rows = (
        EstimateCalibration.objects.filter(deployment_id__in=list(deployment_ids), learned_at__lte=at)
        .order_by("deployment_id", "basis", "currency", "-learned_at", "-id")
        .distinct("deployment_id", "basis", "currency")
        .values_list("deployment_id", "basis", "currency", "id", "factor")
    )
    return {
        (deployment_id, basis, currency): Factor(pk, factor)
        for deployment_id, basis, currency, pk, factor in rows
    }


def _weight(age_days: int) -> Decimal:
    return Decimal(2) ** (-Decimal(age_days) / HALF_LIFE_DAYS)


def _steady(recent: list[tuple[dt.date, dict]], factor: Decimal) -> bool:
    """Is the bias a steady one? |factor − 1| must exceed STEADY_SIGMAS standard errors of the
    daily billed / estimated ratios of the window."""
    ratios = [float(entry["billed"] / entry["estimated"]) for _, entry in recent if entry["estimated"] > 0]
    if len(ratios) < MIN_DAYS:
        return False
    spread = statistics.stdev(ratios) / len(ratios) ** 0.5
    return abs(float(factor) - 1) > STEADY_SIGMAS * spread


def calibration_learn(
    *, deployment_ids: Iterable[int] | None = None, now: dt.datetime | None = None
) -> list[EstimateCalibration]:
    """Learn the factor of each (deployment, basis, currency) from its reconciled estimates.

    Idempotent: learning again from the same true-ups adds no row. Returns the rows added.
    """
    now = now or timezone.now()
    reconciled = SpendEstimate.objects.filter(reconciled_at__isnull=False, reconciled_at__lte=now)
    if deployment_ids is not None:
        reconciled = reconciled.filter(deployment_id__in=list(deployment_ids))
    # Per deployment-day, the basis it was estimated on: the basis of its estimated rows. Its
    # unestimated rows (billed cells nobody estimated) belong to the same comparison.
    per_cell = (
        reconciled.values("deployment_id", "day", "currency", "basis")
        .annotate(estimated=Sum("uncalibrated_cost"), raw=Sum("estimated_cost"), billed=Sum("billed_cost"))
        .order_by("deployment_id", "currency", "-day")
    )
    days: dict[tuple[int, str], dict[dt.date, dict]] = defaultdict(dict)
    for row in per_cell:
        entry = days[(row["deployment_id"], row["currency"])].setdefault(
            row["day"], {"basis": "", "estimated": Decimal(0), "billed": Decimal(0)}
        )
        if row["basis"] in CALIBRATED_BASES:
            entry["basis"] = row["basis"]
            # Rows written before calibration existed have no uncalibrated figure: theirs is the raw one.
            entry["estimated"] += row["estimated"] if row["estimated"] is not None else row["raw"] or 0
        entry["billed"] += row["billed"] or 0

    current = calibration_factors_current(deployment_ids={key[0] for key in days}, at=now)
    added: list[EstimateCalibration] = []
    for (deployment_id, currency), by_day in days.items():
        by_basis: dict[str, list[tuple[dt.date, dict]]] = defaultdict(list)
        for day, entry in sorted(by_day.items(), reverse=True):
            if entry["basis"] and entry["estimated"] > 0:
                by_basis[entry["basis"]].append((day, entry))
        for basis, recent in by_basis.items():
            recent = recent[:WINDOW_DAYS]
            if len(recent) < MIN_DAYS:
                continue
            newest = recent[0][0]
            weighted_billed = sum((_weight((newest - d).days) * e["billed"] for d, e in recent), Decimal(0))
            weighted_estimated = sum(
                (_weight((newest - d).days) * e["estimated"] for d, e in recent), Decimal(0)
            )
            if weighted_estimated <= 0:
                continue
            factor = (weighted_billed / weighted_estimated).quantize(FACTOR_QUANTUM)
            if not FACTOR_MIN <= factor <= FACTOR_MAX:
                continue
            if not _steady(recent, factor):
                # The misses go both ways more than they lean one way (traffic mix, weekdays): a
                # factor would chase noise and make estimates worse, so none is applied.
                factor = Decimal(1).quantize(FACTOR_QUANTUM)
            in_force = current.get((deployment_id, basis, currency))
            if in_force is not None and abs(in_force.factor - factor) < FACTOR_TOLERANCE:
                continue
            added.append(
                EstimateCalibration(
                    deployment_id=deployment_id,
                    basis=basis,
                    currency=currency,
                    factor=factor,
                    learned_at=now,
                    window_first=recent[-1][0],
                    window_last=newest,
                    days_used=len(recent),
                    estimated=sum((e["estimated"] for _, e in recent), Decimal(0)),
                    billed=sum((e["billed"] for _, e in recent), Decimal(0)),
                )
            )
    EstimateCalibration.objects.bulk_create(added)
    return added
