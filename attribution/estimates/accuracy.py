"""How good the estimates were, once their bills landed: reads for the overview panel and the API.

The unit of comparison is the deployment-day: every estimate of a (day, deployment), all teams
together, against everything billed for that deployment that day (reconciliation adds the cells
nobody estimated as `unestimated` rows, so the billed side is the whole bill). For each
deployment-day the absolute percentage error is |estimated − billed| / billed, calibrated (what
was shown and enforced) and uncalibrated (what the basis alone gave). Figures: median and p90 of
those errors, bias over the period, per provider and per basis, and the share of billed dollars
that had no estimate at all. Percentages are not money: they are floats rounded for display;
dollar figures stay Decimal and per currency.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from django.db import connection
from django.db.models import Max, Sum

from attribution.costs.selectors import CostFilters, EstimateAccuracy, _apply, _sees_everything
from attribution.models import EstimateCalibration, SpendEstimate

ZERO = Decimal(0)
BASIS_UNESTIMATED = "unestimated"


@dataclass
class DeploymentDay:
    day: dt.date
    deployment_id: int
    deployment_slug: str
    provider: str
    currency: str
    basis: str  # the basis its estimates were made on; `unestimated` when none was made
    estimated: Decimal = ZERO
    uncalibrated: Decimal = ZERO
    billed: Decimal = ZERO
    unestimated_billed: Decimal = ZERO  # billed cells nobody estimated
    calibration_factor: Decimal | None = None

    # |estimated − billed| / billed in percent, calibrated and not (None without a positive bill):
    # set once the day's cells are summed (`_set_errors`), then read by every figure that uses them.
    error: Decimal | None = None
    uncalibrated_error: Decimal | None = None
    # The two as floats, for the percentiles of every group the day is in (converted once).
    error_floats: tuple[float, float] | None = field(default=None, repr=False)

    def error_percent(self, *, calibrated: bool = True) -> float | None:
        error = self.error if calibrated else self.uncalibrated_error
        return None if error is None else float(error)

    def _set_errors(self) -> None:
        if self.billed > 0:
            self.error = abs(self.estimated - self.billed) / self.billed * 100
            self.uncalibrated_error = abs(self.uncalibrated - self.billed) / self.billed * 100
            self.error_floats = (float(self.error), float(self.uncalibrated_error))


@dataclass
class AccuracyFigures:
    key: str
    deployment_days: int = 0
    estimated: Decimal = ZERO
    uncalibrated: Decimal = ZERO
    billed: Decimal = ZERO
    median_error_percent: float | None = None
    p90_error_percent: float | None = None
    uncalibrated_median_error_percent: float | None = None
    uncalibrated_p90_error_percent: float | None = None
    # (estimated − billed) / billed over the whole group: positive means over-estimated.
    bias_percent: float | None = None
    uncalibrated_bias_percent: float | None = None


@dataclass
class CurrencyCoverage:
    currency: str
    billed: Decimal = ZERO
    unestimated: Decimal = ZERO

    @property
    def unestimated_share_percent(self) -> float | None:
        return round(float(self.unestimated / self.billed * 100), 2) if self.billed > 0 else None


@dataclass
class AccuracyReport:
    overall: AccuracyFigures
    by_provider: list[AccuracyFigures] = field(default_factory=list)
    by_basis: list[AccuracyFigures] = field(default_factory=list)
    by_day: list[AccuracyFigures] = field(default_factory=list)
    coverage: list[CurrencyCoverage] = field(default_factory=list)
    deployment_days: list[DeploymentDay] = field(default_factory=list)


def _median_and_p90(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    median, p90 = np.percentile(values, (50, 90))  # the same values as two calls, in one
    return round(float(median), 2), round(float(p90), 2)


def _figures(key: str, rows: list[DeploymentDay]) -> AccuracyFigures:
    figures = AccuracyFigures(
        key=key,
        deployment_days=len(rows),
        estimated=sum((row.estimated for row in rows), ZERO),
        uncalibrated=sum((row.uncalibrated for row in rows), ZERO),
        billed=sum((row.billed for row in rows), ZERO),
    )
    # Days with no estimate at all count in the dollar share, not in the estimate's error (a day
    # has an error when its bill is positive).
    compared = [row.error_floats for row in rows if row.basis != BASIS_UNESTIMATED and row.error is not None]
    figures.median_error_percent, figures.p90_error_percent = _median_and_p90(
        [error for error, _ in compared]
    )
    (
        figures.uncalibrated_median_error_percent,
        figures.uncalibrated_p90_error_percent,
    ) = _median_and_p90([uncalibrated for _, uncalibrated in compared])
    if figures.billed > 0:
        figures.bias_percent = round(float((figures.estimated - figures.billed) / figures.billed * 100), 2)
        figures.uncalibrated_bias_percent = round(
            float((figures.uncalibrated - figures.billed) / figures.billed * 100), 2
        )
    return figures


_DAY_COLUMNS = (
    "day",
    "deployment_id",
    "deployment__slug",
    "deployment__provider",
    "currency",
    "basis",
    "estimated",
    "uncalibrated",
    "billed",
    "factor",
)


def deployment_days_reconciled(*, user, filters: CostFilters | None = None) -> list[DeploymentDay]:
    """Every reconciled deployment-day in range, all its cells summed (one grouped query)."""
    rows = _apply(
        SpendEstimate.objects.restrict(user).filter(reconciled_at__isnull=False),
        filters or CostFilters(),
        estimates=True,
    )
    grouped = (
        rows.values(*_DAY_COLUMNS[:6])
        .annotate(
            estimated=Sum("estimated_cost"),
            uncalibrated=Sum("uncalibrated_cost"),
            billed=Sum("billed_cost"),
            factor=Max("calibration_factor"),
        )
        .order_by("day", "deployment__slug", "currency")
    )
    # Read as plain tuples: the overview reads some 450 of these per computed page, and the ORM's
    # dict and converters per value (Decimal stays Decimal either way) cost it about 2 ms of CPU.
    query = grouped.query
    assert (*query.values_select, *query.annotation_select) == _DAY_COLUMNS
    sql, params = query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    days: dict[tuple, DeploymentDay] = {}
    for (
        day,
        deployment_id,
        slug,
        provider,
        currency,
        basis,
        estimated,
        uncalibrated,
        billed,
        factor,
    ) in fetched:
        key = (day, deployment_id, currency)
        entry = days.get(key)
        if entry is None:
            entry = days[key] = DeploymentDay(
                day=day,
                deployment_id=deployment_id,
                deployment_slug=slug,
                provider=provider,
                currency=currency,
                basis=BASIS_UNESTIMATED,
            )
        estimated = estimated or ZERO
        # Estimates made before calibration existed carry no uncalibrated figure: it is the same.
        if uncalibrated is None:
            uncalibrated = estimated
        billed = billed or ZERO
        entry.estimated += estimated
        entry.uncalibrated += uncalibrated
        entry.billed += billed
        if basis == BASIS_UNESTIMATED:
            entry.unestimated_billed += billed
        else:
            entry.basis = basis
            if factor is not None and uncalibrated:
                entry.calibration_factor = (estimated / uncalibrated).quantize(Decimal("0.000001"))
    for entry in days.values():
        entry._set_errors()
    return list(days.values())


def estimate_accuracy_report(
    *, user, filters: CostFilters | None = None, with_days: bool = False, by_day: bool = True
) -> AccuracyReport:
    """Median and p90 error per deployment-day, calibrated and not, overall / per provider / per basis /
    per day (unless not `by_day`: a page that shows no per-day figures skips their percentiles),
    and the share of billed dollars that had no estimate."""
    rows = deployment_days_reconciled(user=user, filters=filters)
    groups: dict[str, dict[str, list[DeploymentDay]]] = {
        "provider": defaultdict(list),
        "basis": defaultdict(list),
        "day": defaultdict(list),
    }
    coverage: dict[str, CurrencyCoverage] = {}
    for row in rows:
        groups["provider"][row.provider].append(row)
        groups["basis"][row.basis].append(row)
        if by_day:
            groups["day"][row.day.isoformat()].append(row)
        cover = coverage.setdefault(row.currency, CurrencyCoverage(row.currency))
        cover.billed += row.billed
        # Dollars of deployment-days nobody estimated at all. Cells of an estimated day that do not
        # line up with its estimates (a pool billed without teams, estimated per team) are the
        # estimate's error, not dollars without an estimate.
        if row.basis == BASIS_UNESTIMATED:
            cover.unestimated += row.billed
    return AccuracyReport(
        overall=_figures("all", rows),
        by_provider=[_figures(key, items) for key, items in sorted(groups["provider"].items())],
        by_basis=[_figures(key, items) for key, items in sorted(groups["basis"].items())],
        by_day=[_figures(key, items) for key, items in sorted(groups["day"].items())] if by_day else [],
        coverage=sorted(coverage.values(), key=lambda cover: -cover.billed),
        deployment_days=rows if with_days else [],
    )


@dataclass
class CalibrationRow:
    deployment_slug: str
    provider: str
    basis: str
    currency: str
    factor: Decimal
    learned_at: dt.datetime
    window_first: dt.date
    window_last: dt.date
    days_used: int
    # Sums over every team on the deployment: only for users who see every team.
    estimated: Decimal | None
    billed: Decimal | None
    in_force: bool


def calibration_history(*, user, deployment: str = "") -> list[CalibrationRow]:
    """Calibration factors, newest first per deployment; `in_force` marks the one applied now.

    A user who does not see every team sees the deployments their teams' estimates ran on,
    without the deployment-wide dollar sums.
    """
    sees_all = _sees_everything(user)
    rows = EstimateCalibration.objects.select_related("deployment").order_by(
        "deployment__slug", "basis", "currency", "-learned_at", "-id"
    )
    if deployment:
        rows = rows.filter(deployment__slug=deployment)
    if not sees_all:
        own = SpendEstimate.objects.restrict(user).values("deployment_id")
        rows = rows.filter(deployment_id__in=own)
    seen: set[tuple[int, str, str]] = set()
    result = []
    for row in rows:
        key = (row.deployment_id, row.basis, row.currency)
        result.append(
            CalibrationRow(
                deployment_slug=row.deployment.slug,
                provider=row.deployment.provider,
                basis=row.basis,
                currency=row.currency,
                factor=row.factor,
                learned_at=row.learned_at,
                window_first=row.window_first,
                window_last=row.window_last,
                days_used=row.days_used,
                estimated=row.estimated if sees_all else None,
                billed=row.billed if sees_all else None,
                in_force=key not in seen,
            )
        )
        seen.add(key)
    return result


def accuracy_per_deployment(days: list[DeploymentDay]) -> list[EstimateAccuracy]:
    """cost_selectors.estimate_accuracy's rows (MAPE and bias per deployment and currency), from
    deployment-days already read: the overview gets both views from one query."""
    results: dict[tuple[int, str], EstimateAccuracy] = {}
    errors: dict[tuple[int, str], list[Decimal]] = defaultdict(list)
    for row in sorted(days, key=lambda row: (row.deployment_slug, row.currency, row.day)):
        key = (row.deployment_id, row.currency)
        accuracy = results.get(key)
        if accuracy is None:
            accuracy = results[key] = EstimateAccuracy(
                row.deployment_id, row.deployment_slug, row.provider, row.currency
            )
        accuracy.days += 1
        accuracy.estimated += row.estimated
        accuracy.billed += row.billed
        accuracy.last_day = row.day
        if row.error is not None:
            errors[key].append(row.error)
    for key, accuracy in results.items():
        if errors[key]:
            accuracy.mape_percent = sum(errors[key], ZERO) / len(errors[key])
        if accuracy.billed > 0:
            accuracy.bias_percent = (accuracy.estimated - accuracy.billed) / accuracy.billed * 100
    return list(results.values())
