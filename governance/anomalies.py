"""Daily anomaly detection per scope (team, model, provider, deployment), each anomaly an alert.

Spend is read on the basis budgets use (governance/spend.py): the bill's effective (amortized) cost
after allocation — AllocatedCost where allocation ran for the account and day (a team's share of the
shared pools included), else DailyCost — and, where a bill has not landed, the estimate from gateway
usage. A day is only ever compared with days on the same basis:

- The sources (cloud accounts; a deployment without one, its provider) whose bill for day D has
  landed are compared on their billed history.
- The sources still estimated on D are compared on their *estimate* history: what the estimates
  said on each earlier day (SpendEstimate rows are kept, with the bill beside them, once the bill
  lands), not what the bill later said. Estimates and bills differ by the estimates' error, and a
  day made of estimates against a baseline of bills would show that error as a jump.
- With fewer than MIN_BASELINE_DAYS of estimate history, the estimated sources are left out of D's
  comparison (the billed part of each scope is still judged): an estimate is not judged against
  bills.

For day D, each scope value's spend (in the reporting currency) is compared with the previous 28
days on that mix: expected = their median, band = median ± 3 × 1.4826 × MAD (robust, so one earlier
spike does not widen it; at least ±10 % of the median). A day above the band whose excess is at
least ANOMALY_MIN_IMPACT (reporting currency) is an anomaly. Its contributors are the other
dimensions' values (service, SKU, deployment, team, model, region, provider, account) whose spend
that day rose most over their own daily mean in the baseline — what explains the jump — each with
the basis its figures are on. Allocated cost and estimates carry no service or SKU (allocation splits
a day × account × team × model × deployment): on those rows the contributors fall back to the
dimensions the basis has (deployment, model, team, region, provider, account), and the anomaly
lists the dimensions its day could not be explained by (`not_in_basis`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd
from django.conf import settings
from django.db.models import F, Sum

from attribution.costs.selectors import allocated_account_day
from attribution.currency.services import RateBook, reporting_currency
from attribution.design import money_text
from attribution.models import (
    AllocatedCost,
    CloudAccount,
    DailyCost,
    Deployment,
    ServedModel,
    SpendEstimate,
    Team,
)
from governance.choices import AlertKind, Severity
from governance.services import alert_raise

BASELINE_DAYS = 28
MIN_BASELINE_DAYS = 14
SCOPES = ("team", "model", "provider", "deployment")
CONTRIBUTOR_DIMENSIONS = ("service", "sku", "deployment", "team", "model", "region", "provider", "account")
CENT = Decimal("0.01")
# Most specific first: of contributors explaining about as much, the message names the narrowest
# (a deployment's jump is also its region's, account's and provider's).
SPECIFICITY = ("sku", "deployment", "service", "model", "team", "region", "account", "provider")
# Named even when the scope has only one (a model's jump from its only team, on its only
# deployment): who and where. A lone service or provider explains nothing.
ALWAYS_NAMED = frozenset({"team", "deployment"})
# Basis of a frame row: allocated cost, billed cost (DailyCost where allocation has not run), estimate.
ALLOCATED, BILLED, ESTIMATED = "allocated", "billed", "estimated"
# The contributor dimensions each basis has: allocation splits day × account × team × model ×
# deployment (no service or SKU), and an estimate is per deployment × team × model.
BASIS_DIMENSIONS = {
    ALLOCATED: frozenset(CONTRIBUTOR_DIMENSIONS) - {"service", "sku"},
    BILLED: frozenset(CONTRIBUTOR_DIMENSIONS),
    ESTIMATED: frozenset(CONTRIBUTOR_DIMENSIONS) - {"service", "sku"},
}
COLUMNS = [
    "day", "team", "model", "provider", "deployment", "account", "service", "sku", "region", "basis",
    "currency", "amount",
]  # fmt: skip


@dataclass(frozen=True)
class Anomaly:
    dimension: str
    value: str
    day: dt.date
    actual: Decimal
    expected: Decimal
    lower: Decimal
    upper: Decimal
    impact: Decimal
    contributors: list[dict]
    # Bases of the day's spend in this scope ("allocated", "billed", "estimated").
    basis: list[str] = field(default_factory=list)
    # Contributor dimensions the day's figures do not carry (allocated cost and estimates have no
    # service or SKU): the contributors could not explain the jump by these.
    not_in_basis: list[str] = field(default_factory=list)


def _cents(value: float) -> Decimal:
    return Decimal(repr(round(value, 2))).quantize(CENT)


def _billed_only(basis: str, row: dict) -> tuple[str | None, str | None]:
    """Service and SKU: only the bill's rows carry them ("(none)" where a row has none)."""
    if basis != BILLED:
        return None, None
    return row["service_name"] or "(none)", row["sku_id"] or "(none)"


def _source(account_id, provider) -> str:
    """Where a bill lands: the account, or for a deployment without one its provider."""
    return f"account:{account_id}" if account_id is not None else f"provider:{provider}"


def _frame(*, start: dt.date, end: dt.date, currency: str) -> pd.DataFrame:
    """Spend rows over [start, end] on every basis, with every dimension the basis has, converted
    to `currency`. Estimates are all of them (reconciled or not): an estimated day is compared with
    what the estimates said before it."""
    days = {"day__gte": start, "day__lte": end}
    dimensions = ("day", "team_id", "model_id", "provider", "deployment_id", "account_id")
    allocated = (
        AllocatedCost.objects.filter(**days)
        .values(*dimensions, region=F("deployment__region"), currency=F("billing_currency"))
        .annotate(amount=Sum("effective_cost"))
        .order_by()
    )
    billed = (
        DailyCost.objects.filter(**days)
        .filter(~allocated_account_day())
        .values(*dimensions, "service_name", "sku_id", region=F("region_id"), currency=F("billing_currency"))
        .annotate(amount=Sum("effective_cost"))
        .order_by()
    )
    estimated = (
        SpendEstimate.objects.filter(**days)
        .values(
            "day", "team_id", "model_id", "deployment_id", "currency",
            provider=F("deployment__provider"), account_id=F("deployment__account_id"),
            region=F("deployment__region"),
        )
        .annotate(amount=Sum("estimated_cost"))
        .order_by()
    )  # fmt: skip
    rows = []
    for basis, queryset in ((ALLOCATED, allocated), (BILLED, billed), (ESTIMATED, estimated)):
        none = "(none)" if basis == BILLED else None  # a billed row without it, or no such column
        for r in queryset:
            rows.append((
                r["day"], r["team_id"], r["model_id"], r["provider"], r["deployment_id"],
                _source(r["account_id"], r["provider"]), *_billed_only(basis, r),
                r["region"] or none, basis, r["currency"], r["amount"],
            ))  # fmt: skip
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    book = RateBook(currencies={row[10] for row in rows}, to_currency=currency, start=start, end=end)
    converted = []
    for row in rows:
        conversion = book.convert(amount=row[11] or Decimal("0"), day=row[0], currency=row[10])
        if conversion is not None:
            converted.append((*row[:11], float(conversion.amount)))
    return pd.DataFrame(converted, columns=COLUMNS)


def _estimated_sources(frame: pd.DataFrame, day: dt.date) -> set[str]:
    """Sources whose spend on `day` is on the estimate basis: every source in the frame whose bill
    for that day has not landed (with open estimates, or with no usage reported: estimated at zero).
    A source is billed on a day when the bill has rows for it, as for budgets (`_bill_landed`)."""
    billed_accounts = set(DailyCost.objects.filter(day=day).values_list("account_id", flat=True).distinct())
    billed_providers = set(
        CloudAccount.objects.filter(pk__in=billed_accounts).values_list("provider", flat=True)
    )
    sources = set(frame["account"])
    return {
        source
        for source in sources
        if not (
            (source.startswith("account:") and int(source.split(":", 1)[1]) in billed_accounts)
            or (source.startswith("provider:") and source.split(":", 1)[1] in billed_providers)
        )
    }


def _like_for_like(frame: pd.DataFrame, *, day: dt.date, start: dt.date) -> tuple[pd.DataFrame, list]:
    """The rows that compare `day` with its baseline on one basis per source, and the baseline days.

    A source billed on `day` brings its billed rows (allocated, else DailyCost) and no estimates; a
    source still estimated on `day` brings its estimates and no bills, over the days that have
    estimates. Without MIN_BASELINE_DAYS such days, the estimated sources are left out."""
    baseline_days = list(pd.date_range(start, day - dt.timedelta(days=1), freq="D").date)
    is_estimate = frame["basis"] == ESTIMATED
    unbilled = frame["account"].isin(_estimated_sources(frame, day))
    # A bill of a source whose day is estimated stays out of the baseline, as its day has no bill.
    keep = ~is_estimate & ~unbilled
    covered = set(frame.loc[is_estimate & unbilled, "day"]) - {day}
    if len(covered) >= MIN_BASELINE_DAYS:
        keep |= is_estimate & unbilled
        baseline_days = [item for item in baseline_days if item in covered]
    return frame[keep], baseline_days


def _labels() -> dict[str, dict]:
    return {
        "team": dict(Team.objects.values_list("id", "slug")),
        "model": dict(ServedModel.objects.values_list("id", "slug")),
        "deployment": dict(Deployment.objects.values_list("id", "slug")),
        "account": {
            _source(pk, provider): slug
            for pk, provider, slug in CloudAccount.objects.values_list("pk", "provider", "slug")
        },
    }


def anomalies_find(*, day: dt.date, min_impact: float | None = None) -> list[Anomaly]:
    min_impact = float(settings.ANOMALY_MIN_IMPACT if min_impact is None else min_impact)
    start = day - dt.timedelta(days=BASELINE_DAYS)
    frame = _frame(start=start, end=day, currency=reporting_currency())
    if frame.empty:
        return []
    frame, baseline_days = _like_for_like(frame, day=day, start=start)
    if frame.empty:
        return []
    labels = _labels()
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
            rows = scoped[scoped[dimension] == value]
            on_day = rows[rows["day"] == day]
            found.append(
                Anomaly(
                    dimension=dimension,
                    value=str(labels.get(dimension, {}).get(value, value)),
                    day=day,
                    actual=_cents(actual),
                    expected=_cents(median),
                    lower=_cents(max(lower, 0.0)),
                    upper=_cents(upper),
                    impact=_cents(impact),
                    contributors=_contributors(rows, dimension, day, baseline_days, labels),
                    basis=sorted(set(on_day["basis"])),
                    not_in_basis=[
                        item
                        for item in CONTRIBUTOR_DIMENSIONS
                        if item != dimension
                        and any(item not in BASIS_DIMENSIONS[b] for b in set(on_day["basis"]))
                    ],
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
        known = rows.dropna(subset=[dimension])
        daily = known.groupby([dimension, "day"])["amount"].sum().unstack(fill_value=0.0)
        if len(daily.index) < 2 and dimension not in ALWAYS_NAMED:
            continue  # a single value (all SageMaker, say) explains nothing
        for value, row in daily.iterrows():
            actual = float(row.get(day, 0.0))
            expected = float(row.reindex(baseline_days, fill_value=0.0).mean())
            if actual - expected > 0:
                on_day = known[(known[dimension] == value) & (known["day"] == day)]
                result.append(
                    {
                        "dimension": dimension,
                        "value": str(labels.get(dimension, {}).get(value, value)),
                        "actual": _cents(actual),
                        "expected": _cents(expected),
                        "delta": _cents(actual - expected),
                        "basis": "+".join(sorted(set(on_day["basis"]))),
                    }
                )
    return sorted(result, key=lambda item: (-item["delta"], SPECIFICITY.index(item["dimension"])))[:5]


def _headline(contributors: list[dict]) -> dict | None:
    """The contributor the message names: the most specific of those within 10 % of the largest rise."""
    if not contributors:
        return None
    floor = max(item["delta"] for item in contributors) * Decimal("0.9")
    near = [item for item in contributors if item["delta"] >= floor]
    return min(near, key=lambda item: SPECIFICITY.index(item["dimension"]))


BASIS_TEXT = {
    ALLOCATED: "allocated cost",
    BILLED: "billed cost",
    ESTIMATED: "estimated from usage, bill not landed",
}


def anomaly_message(anomaly: Anomaly, currency: str) -> str:
    """The alert's text: money rounded to the currency's digits with the code, the basis named."""
    top = _headline(anomaly.contributors)
    explained = (
        f"; mostly {top['dimension']} {top['value']} (+{money_text(top['delta'], currency)})" if top else ""
    )
    basis = ", ".join(BASIS_TEXT[item] for item in anomaly.basis)
    return (
        f"{anomaly.dimension.capitalize()} {anomaly.value} spent {money_text(anomaly.actual, currency)} on "
        f"{anomaly.day}{f' ({basis})' if basis else ''}, expected {money_text(anomaly.expected, currency)} "
        f"(band {money_text(anomaly.lower, currency)} to {money_text(anomaly.upper, currency)})"
        f"{explained}."
    )


def anomalies_detect(*, day: dt.date, min_impact: float | None = None) -> list[tuple[Anomaly, bool]]:
    """Find the day's anomalies and raise each as an alert (once per scope and day)."""
    raised = []
    currency = reporting_currency()
    for anomaly in anomalies_find(day=day, min_impact=min_impact):
        team = Team.objects.filter(slug=anomaly.value).first() if anomaly.dimension == "team" else None
        alert, created = alert_raise(
            kind=AlertKind.ANOMALY,
            severity=Severity.WARNING,
            dedup_key=f"anomaly:{anomaly.dimension}:{anomaly.value}:{anomaly.day}",
            message=anomaly_message(anomaly, currency),
            details={
                "dimension": anomaly.dimension,
                "value": anomaly.value,
                "day": anomaly.day.isoformat(),
                "actual": str(anomaly.actual),
                "expected": str(anomaly.expected),
                "lower": str(anomaly.lower),
                "upper": str(anomaly.upper),
                "impact": str(anomaly.impact),
                "currency": currency,
                "basis": anomaly.basis,
                "not_in_basis": anomaly.not_in_basis,
                "contributors": [
                    {**item, **{key: str(item[key]) for key in ("actual", "expected", "delta")}}
                    for item in anomaly.contributors
                ],
            },  # fmt: skip
            team=team,
        )
        raised.append((anomaly, created))
    return raised
