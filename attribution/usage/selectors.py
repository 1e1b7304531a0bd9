"""Reads of gateway usage, from the hourly and daily rollups only (never from raw minute buckets).

Percentiles come from the summed latency histograms. Within the bucket that holds the wanted rank
the latency is interpolated linearly between the bucket's bounds (the first bucket starts at 0 ms);
a rank that falls in the open-ended overflow bucket is reported as its lower bound, the last
finite bound (60,000 ms), since there is no upper bound to interpolate towards. A histogram with no
counts gives None.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import QuerySet

from attribution.models import LATENCY_BUCKET_BOUNDS_MS
from attribution.models.usage import UsageDaily, UsageHourly

GROUP_FIELDS = {"deployment": "deployment__slug", "team": "team__slug", "model": "model__slug"}


def histogram_percentile(histogram: Sequence[int], quantile: float) -> float | None:
    """The latency (ms) below which `quantile` (0..1) of the requests fall; see the module doc."""
    total = sum(histogram)
    if total <= 0:
        return None
    rank = quantile * total
    cumulative = 0
    for index, count in enumerate(histogram):
        if count and cumulative + count >= rank:
            if index >= len(LATENCY_BUCKET_BOUNDS_MS):
                return float(LATENCY_BUCKET_BOUNDS_MS[-1])
            low = 0.0 if index == 0 else float(LATENCY_BUCKET_BOUNDS_MS[index - 1])
            high = float(LATENCY_BUCKET_BOUNDS_MS[index])
            return low + (high - low) * (rank - cumulative) / count
        cumulative += count
    return float(LATENCY_BUCKET_BOUNDS_MS[-1])


@dataclass
class UsageRow:
    period: dt.date | dt.datetime
    group: dict[str, str | None]
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors: int = 0
    gpu_seconds: Decimal = Decimal(0)
    latency_ms_sum: float = 0.0
    latency_histogram: list[int] = field(default_factory=list)

    @property
    def latency_p50_ms(self) -> float | None:
        return histogram_percentile(self.latency_histogram, 0.50)

    @property
    def latency_p95_ms(self) -> float | None:
        return histogram_percentile(self.latency_histogram, 0.95)

    @property
    def latency_mean_ms(self) -> float | None:
        return self.latency_ms_sum / self.requests if self.requests else None

    def as_dict(self) -> dict:
        return {
            "period": self.period.isoformat(),
            **self.group,
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "errors": self.errors,
            "gpu_seconds": str(self.gpu_seconds),
            "latency_mean_ms": self.latency_mean_ms,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
        }


def _usage(
    queryset: QuerySet, *, unit: str, user, group_by: Sequence[str], filters: dict[str, object]
) -> list[UsageRow]:
    unknown = set(group_by) - set(GROUP_FIELDS)
    if unknown:
        allowed = ", ".join(GROUP_FIELDS)
        raise ValueError(f"Cannot group usage by {', '.join(sorted(unknown))}; use {allowed}.")
    for name, value in filters.items():
        if value:
            queryset = queryset.filter(**{GROUP_FIELDS[name]: value})
    lookups = [GROUP_FIELDS[name] for name in group_by]
    rows = (
        queryset.restrict(user)
        .values_list(
            unit,
            *lookups,
            "requests",
            "input_tokens",
            "output_tokens",
            "errors",
            "gpu_seconds",
            "latency_ms_sum",
            "latency_histogram",
        )
        .order_by(unit)
    )
    # Histograms cannot be summed by the ORM; the rollup already has few rows per period, so they
    # are added here (one query, no per-row lookups).
    merged: dict[tuple, UsageRow] = {}
    for period, *rest in rows:
        keys = tuple(rest[: len(lookups)])
        requests, input_tokens, output_tokens, errors, gpu_seconds, latency_ms_sum, histogram = rest[
            len(lookups) :
        ]
        row = merged.get((period, keys))
        if row is None:
            group = dict(zip(group_by, keys, strict=True))
            row = merged[(period, keys)] = UsageRow(period=period, group=group)
        row.requests += requests
        row.input_tokens += input_tokens
        row.output_tokens += output_tokens
        row.errors += errors
        row.gpu_seconds += gpu_seconds
        row.latency_ms_sum += latency_ms_sum
        if histogram:
            row.latency_histogram = (
                [a + b for a, b in zip(row.latency_histogram, histogram, strict=True)]
                if row.latency_histogram
                else list(histogram)
            )
    return list(merged.values())


def usage_by_day(
    *,
    user,
    start: dt.date,
    end: dt.date,
    group_by: Sequence[str] = (),
    deployment: str | None = None,
    team: str | None = None,
    model: str | None = None,
) -> list[UsageRow]:
    """Usage per UTC day in [start, end), grouped by any of deployment/team/model (slugs), with
    p50/p95 latency from the summed histograms. Only rows of teams the user may see."""
    queryset = UsageDaily.objects.filter(day__gte=start, day__lt=end)
    return _usage(
        queryset,
        unit="day",
        user=user,
        group_by=group_by,
        filters={"deployment": deployment, "team": team, "model": model},
    )


def usage_by_hour(
    *,
    user,
    start: dt.datetime,
    end: dt.datetime,
    group_by: Sequence[str] = (),
    deployment: str | None = None,
    team: str | None = None,
    model: str | None = None,
) -> list[UsageRow]:
    """Usage per hour in [start, end); see usage_by_day."""
    queryset = UsageHourly.objects.filter(hour__gte=start, hour__lt=end)
    return _usage(
        queryset,
        unit="hour",
        user=user,
        group_by=group_by,
        filters={"deployment": deployment, "team": team, "model": model},
    )
