"""Gateway usage of the demo company: hourly buckets per (gateway, deployment, team, model).

The numbers for one deployment and one day depend only on (seed, deployment, day), so the billing
writers can recompute the tokens of per-token deployments (Bedrock, Gemini, Azure OpenAI) and bill
exactly what the gateways reported, without holding the usage in memory. Shared pools split their
traffic over several teams by weights that drift day to day; managed endpoints serve their one
tagged team. `gpu_seconds` of a GPU deployment add up to its GPUs x the hours it was up, shared
by the teams in proportion to their requests.

File layout: `usage/usage-YYYY-MM-DD.ndjson`, one JSON object per line:

    {"bucket_start": "2026-10-01T00:00:00Z", "bucket_seconds": 3600, "reporter": "gw-envoy-prod",
     "deployment": "...", "team": "...", "model": "...", "requests": 1234, "input_tokens": ...,
     "output_tokens": ..., "errors": 3, "gpu_seconds": 1234.567, "latency_ms_sum": 812345.5,
     "latency_histogram": [17 counts: one per LATENCY_BUCKET_BOUNDS_MS bucket + the overflow]}

`gpu_seconds` has at most three decimals (the model field is numeric(20,3)).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from attribution.demo.specs import Company, DemoRange, DeploymentSpec
from attribution.models import LATENCY_BUCKET_BOUNDS_MS

EPOCH = dt.date(2026, 1, 1)
MILLI = Decimal("0.001")


@dataclass(frozen=True)
class UsageBucket:
    bucket_start: dt.datetime
    deployment: str
    team: str
    model: str
    reporter: str
    requests: int
    input_tokens: int
    output_tokens: int
    errors: int
    gpu_seconds: Decimal
    latency_ms_sum: float
    latency_histogram: tuple[int, ...]


@lru_cache(maxsize=64)
def _latency_profile(median_ms: float, sigma: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Probability of each histogram bucket for a log-normal latency, and a representative latency
    per bucket (geometric middle; 1.5 x the last bound for the open tail)."""
    mu = math.log(median_ms)
    cdf = [
        0.5 * (1 + math.erf((math.log(bound) - mu) / (sigma * math.sqrt(2))))
        for bound in LATENCY_BUCKET_BOUNDS_MS
    ]
    cdf.append(1.0)
    probabilities = [cdf[0]] + [cdf[i] - cdf[i - 1] for i in range(1, len(cdf))]
    lows = (LATENCY_BUCKET_BOUNDS_MS[0] / 2, *LATENCY_BUCKET_BOUNDS_MS)
    highs = (*LATENCY_BUCKET_BOUNDS_MS, LATENCY_BUCKET_BOUNDS_MS[-1] * 2.25)
    representatives = [math.sqrt(low * high) for low, high in zip(lows, highs, strict=True)]
    return tuple(probabilities), tuple(representatives)


def _split(total: int, probabilities: tuple[float, ...]) -> list[int]:
    """Largest-remainder split of `total` by `probabilities`: integers that add up to `total`."""
    raw = [total * p for p in probabilities]
    counts = [int(value) for value in raw]
    remainder = total - sum(counts)
    order = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[:remainder]:
        counts[i] += 1
    return counts


def _diurnal(hour_utc: int, utc_offset: int) -> float:
    local = (hour_utc + utc_offset) % 24
    # Peak mid-afternoon local time, trough before dawn.
    return 0.35 + 0.65 * (0.5 + 0.5 * math.cos((local - 15) / 24 * 2 * math.pi))


def usage_day(*, company: Company, deployment: DeploymentSpec, day: dt.date) -> list[UsageBucket]:
    """All hourly buckets of one deployment on one day (hours the node was down have none)."""
    rng = random.Random(f"{company.seed}:usage:{deployment.slug}:{day.isoformat()}")
    weekday_factor = 0.72 if day.weekday() >= 5 else 1.0
    growth = 1.0 + 0.0015 * (day - EPOCH).days
    day_noise = rng.uniform(0.92, 1.08)
    weights = [(team, weight * rng.uniform(0.8, 1.2)) for team, weight in deployment.teams]
    weight_total = sum(weight for _, weight in weights)
    probabilities, representatives = _latency_profile(deployment.latency_median_ms, deployment.latency_sigma)
    gpu_hour_seconds = deployment.gpu_count * 3600
    buckets: list[UsageBucket] = []
    for hour in range(24):
        # Draw every hour's numbers even when down, so later hours do not shift with maintenance.
        hour_noise = rng.uniform(0.9, 1.1)
        team_noise = [rng.uniform(0.97, 1.03) for _ in weights]
        token_noise = rng.uniform(0.95, 1.05)
        if deployment.is_down(day, hour):
            continue
        total = (
            deployment.peak_requests_per_hour
            * _diurnal(hour, deployment.utc_offset_hours)
            * weekday_factor
            * growth
            * day_noise
            * hour_noise
        )
        per_team = [
            max(1, int(total * weight / weight_total * noise))
            for (_, weight), noise in zip(weights, team_noise, strict=True)
        ]
        hour_requests = sum(per_team)
        start = dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)
        for (team, _), requests in zip(weights, per_team, strict=True):
            histogram = _split(requests, probabilities)
            latency_sum = round(
                sum(count * rep for count, rep in zip(histogram, representatives, strict=True)), 1
            )
            gpu_seconds = (
                (Decimal(gpu_hour_seconds) * requests / hour_requests).quantize(MILLI)
                if gpu_hour_seconds
                else Decimal("0.000")
            )
            buckets.append(
                UsageBucket(
                    bucket_start=start,
                    deployment=deployment.slug,
                    team=team,
                    model=deployment.model,
                    reporter=deployment.reporter,
                    requests=requests,
                    input_tokens=int(requests * deployment.input_tokens_per_request * token_noise),
                    output_tokens=int(requests * deployment.output_tokens_per_request * token_noise),
                    errors=min(requests, int(requests * deployment.error_rate * hour_noise)),
                    gpu_seconds=gpu_seconds,
                    latency_ms_sum=latency_sum,
                    latency_histogram=tuple(histogram),
                )
            )
    return buckets


def tokens_by_hour(
    *, company: Company, deployment: DeploymentSpec, day: dt.date
) -> dict[int, tuple[int, int]]:
    """{hour: (input_tokens, output_tokens)} over all teams: what a per-token API bills."""
    hours: dict[int, tuple[int, int]] = {}
    for bucket in usage_day(company=company, deployment=deployment, day=day):
        hour = bucket.bucket_start.hour
        inp, out = hours.get(hour, (0, 0))
        hours[hour] = (inp + bucket.input_tokens, out + bucket.output_tokens)
    return hours


def bucket_json(bucket: UsageBucket) -> str:
    return json.dumps(
        {
            "bucket_start": bucket.bucket_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "bucket_seconds": 3600,
            "reporter": bucket.reporter,
            "deployment": bucket.deployment,
            "team": bucket.team,
            "model": bucket.model,
            "requests": bucket.requests,
            "input_tokens": bucket.input_tokens,
            "output_tokens": bucket.output_tokens,
            "errors": bucket.errors,
            # Three decimals at most, so the float prints back exactly as the decimal it came from.
            "gpu_seconds": float(bucket.gpu_seconds),
            "latency_ms_sum": bucket.latency_ms_sum,
            "latency_histogram": list(bucket.latency_histogram),
        },
        separators=(",", ":"),
    )


def usage_days(*, company: Company, demo_range: DemoRange) -> Iterator[tuple[dt.date, list[UsageBucket]]]:
    day = demo_range.start
    while day <= demo_range.end:
        buckets: list[UsageBucket] = []
        for deployment in company.deployments:
            buckets.extend(usage_day(company=company, deployment=deployment, day=day))
        buckets.sort(key=lambda b: (b.bucket_start, b.reporter, b.deployment, b.team))
        yield day, buckets
        day += dt.timedelta(days=1)


def usage_write(*, company: Company, demo_range: DemoRange, out_dir: Path) -> list[Path]:
    """Write one NDJSON file per day; returns the files written."""
    usage_dir = out_dir / "usage"
    usage_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for day, buckets in usage_days(company=company, demo_range=demo_range):
        path = usage_dir / f"usage-{day.isoformat()}.ndjson"
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            for bucket in buckets:
                handle.write(bucket_json(bucket))
                handle.write("\n")
        written.append(path)
    return written
