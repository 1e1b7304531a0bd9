"""Daily anomaly detection per scope (team, model, provider, deployment), each anomaly an alert.

For day D, each scope value's spend (billed + open estimates, in the reporting currency) is compared
with its previous 28 days: expected = their median, band = median ± 3 × 1.4826 × MAD (robust, so
one earlier spike does not widen it; at least ±10 % of the median). A day above the band whose
excess is at least ANOMALY_MIN_IMPACT (reporting currency) is an anomaly. Its contributors are the
other dimensions' values (service, SKU, deployment, team, model, region) whose spend that day rose most
over their own daily mean in the baseline — what explains the jump.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
from django.conf import settings
from django.db.models import Sum

from attribution.currency.services import RateBook, reporting_currency
from attribution.models import DailyCost, Deployment, ServedModel, SpendEstimate, Team
from governance.choices import AlertKind, Severity
from governance.services import alert_raise
from governance.spend import _bill_landed

BASELINE_DAYS = 28
MIN_BASELINE_DAYS = 14
SCOPES = ("team", "model", "provider", "deployment")
CONTRIBUTOR_DIMENSIONS = ("service", "sku", "deployment", "team", "model", "region")


@dataclass(frozen=True)
class Anomaly:
    dimension: str
    value: str
    day: dt.date
    actual: float
    expected: float
    lower: float
    upper: float
    impact: float
    contributors: list[dict]


def _frame(*, start: dt.date, end: dt.date, currency: str) -> pd.DataFrame:
    """Spend rows over [start, end] with every dimension, converted to `currency`."""
    billed = (
        DailyCost.objects.filter(day__gte=start, day__lte=end)
        .values(
            "day",
            "team_id",
            "model_id",
            "provider",
            "deployment_id",
            "service_name",
            "sku_id",
            "region_id",
            "billing_currency",
        )
        .annotate(amount=Sum("billed_cost"))
        .order_by()
    )
    estimated = (
        SpendEstimate.objects.filter(day__gte=start, day__lte=end, reconciled_at__isnull=True)
        .exclude(_bill_landed())
        .values(
            "day",
            "team_id",
            "model_id",
            "deployment__provider",
            "deployment_id",
            "deployment__region",
            "currency",
        )
        .annotate(amount=Sum("estimated_cost"))
        .order_by()
    )
    rows = [
        (r["day"], r["team_id"], r["model_id"], r["provider"], r["deployment_id"],
         r["service_name"] or "(none)", r["sku_id"] or "(none)", r["region_id"] or "(none)",
         r["billing_currency"], r["amount"])
        for r in billed
    ] + [
        (r["day"], r["team_id"], r["model_id"], r["deployment__provider"], r["deployment_id"], "(estimated)",
         "(estimated)", r["deployment__region"] or "(none)", r["currency"], r["amount"])
        for r in estimated
    ]  # fmt: skip
    columns = [
        "day", "team", "model", "provider", "deployment", "service", "sku", "region", "currency", "amount"
    ]  # fmt: skip
    if not rows:
        return pd.DataFrame(columns=columns)
    book = RateBook(currencies={row[8] for row in rows}, to_currency=currency, start=start, end=end)
    converted = []
    for row in rows:
        conversion = book.convert(amount=row[9] or Decimal("0"), day=row[0], currency=row[8])
        if conversion is not None:
            converted.append((*row[:9], float(conversion.amount)))
    return pd.DataFrame(converted, columns=columns)


def _labels() -> dict[str, dict]:
    return {
        "team": dict(Team.objects.values_list("id", "slug")),
        "model": dict(ServedModel.objects.values_list("id", "slug")),
        "deployment": dict(Deployment.objects.values_list("id", "slug")),
    }


def anomalies_find(*, day: dt.date, min_impact: float | None = None) -> list[Anomaly]:
    min_impact = float(settings.ANOMALY_MIN_IMPACT if min_impact is None else min_impact)
    start = day - dt.timedelta(days=BASELINE_DAYS)
    frame = _frame(start=start, end=day, currency=reporting_currency())
    if frame.empty:
        return []
    labels = _labels()
    baseline_days = pd.date_range(start, day - dt.timedelta(days=1), freq="D").date
    found = []
    for dimension in SCOPES:
        scoped = frame.dropna(subset=[dimension])
        daily = scoped.groupby([dimension, "day"])["amount"].sum().unstack(fill_value=0.0)
        for value, row in daily.iterrows():
            history = row.reindex(baseline_days, fill_value=0.0)
            if (history > 0).sum() < MIN_BASELINE_DAYS:
                continue
            actual = float(row.get(day, 0.0))
            median = float(history.median())
            mad = float((history - median).abs().median())
            half = max(3 * 1.4826 * mad, 0.1 * median)
            lower, upper = median - half, median + half
            impact = actual - median
            if actual <= upper or impact < min_impact:
                continue
            found.append(
                Anomaly(
                    dimension=dimension,
                    value=str(labels.get(dimension, {}).get(value, value)),
                    day=day,
                    actual=round(actual, 2),
                    expected=round(median, 2),
                    lower=round(max(lower, 0.0), 2),
                    upper=round(upper, 2),
                    impact=round(impact, 2),
                    contributors=_contributors(
                        scoped[scoped[dimension] == value], dimension, day, baseline_days, labels
                    ),
                )
            )
    return found


def _contributors(
    rows: pd.DataFrame, scope_dimension: str, day: dt.date, baseline_days, labels
) -> list[dict]:
    result = []
    for dimension in CONTRIBUTOR_DIMENSIONS:
        if dimension == scope_dimension:
            continue
        daily = (
            rows.dropna(subset=[dimension])
            .groupby([dimension, "day"])["amount"]
            .sum()
            .unstack(fill_value=0.0)
        )
        if len(daily.index) < 2:
            continue  # a single value (all SageMaker, say) explains nothing
        for value, row in daily.iterrows():
            actual = float(row.get(day, 0.0))
            expected = float(row.reindex(baseline_days, fill_value=0.0).mean())
            if actual - expected > 0:
                result.append(
                    {
                        "dimension": dimension,
                        "value": str(labels.get(dimension, {}).get(value, value)),
                        "actual": round(actual, 2),
                        "expected": round(expected, 2),
                        "delta": round(actual - expected, 2),
                    }
                )
    return sorted(result, key=lambda item: -item["delta"])[:5]


def anomalies_detect(*, day: dt.date, min_impact: float | None = None) -> list[tuple[Anomaly, bool]]:
    """Find the day's anomalies and raise each as an alert (once per scope and day)."""
    raised = []
    currency = reporting_currency()
    for anomaly in anomalies_find(day=day, min_impact=min_impact):
        top = anomaly.contributors[0] if anomaly.contributors else None
        explained = f"; mostly {top['dimension']} {top['value']} (+{top['delta']:.2f})" if top else ""
        team = Team.objects.filter(slug=anomaly.value).first() if anomaly.dimension == "team" else None
        alert, created = alert_raise(
            kind=AlertKind.ANOMALY,
            severity=Severity.WARNING,
            dedup_key=f"anomaly:{anomaly.dimension}:{anomaly.value}:{anomaly.day}",
            message=(
                f"{anomaly.dimension.capitalize()} {anomaly.value} spent {anomaly.actual:.2f} {currency} on "
                f"{anomaly.day}, expected {anomaly.expected:.2f} "
                f"(band {anomaly.lower:.2f}-{anomaly.upper:.2f})"
                f"{explained}."
            ),
            details={
                "dimension": anomaly.dimension,
                "value": anomaly.value,
                "day": anomaly.day.isoformat(),
                "actual": anomaly.actual,
                "expected": anomaly.expected,
                "lower": anomaly.lower,
                "upper": anomaly.upper,
                "impact": anomaly.impact,
                "currency": currency,
                "contributors": anomaly.contributors,
            },  # fmt: skip
            team=team,
        )
        raised.append((anomaly, created))
    return raised
