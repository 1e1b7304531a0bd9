"""What-if: replay the last N days of a model's usage, hour by hour, under a proposed policy (or with
a deployment removed, or a price changed), next to what actually happened; and the model's
cost-vs-latency Pareto frontier. Reads only; nothing is published.

Cost of an hour = its tokens × Σ share_i × unit cost_i (the same unit costs the optimiser uses).
Latency of a mix is approximated by the share-weighted p95 of its deployments (a mix's true p95
needs the full distributions; the weighted p95 is an upper-bound-like figure that ranks mixes the
same way). An SLO violation is an hour whose mix p95 is above the policy's SLO.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import TruncHour

from attribution.models import ServedModel, UsageRecord
from routing import selectors
from routing.optimiser import PolicySpec, RouteProblem, route_solve

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Proposal:
    objective: str | None = None
    latency_slo_ms: float | None = None
    max_share_per_deployment: float | None = None
    min_share_per_provider: float | None = None
    removed_deployment: str = ""  # slug
    price_slug: str = ""  # a deployment whose unit cost is changed...
    price_per_1m: Decimal | None = None  # ...to this


@dataclass(frozen=True)
class ReplaySide:
    cost: Decimal
    p95_ms: float | None
    slo_violations: int


@dataclass(frozen=True)
class Replay:
    days: int
    hours: int
    tokens: int
    currency: str
    actual: ReplaySide
    proposed: ReplaySide
    proposed_weights: dict[str, int]  # the proposal's mix at the busiest hour

    @property
    def saving(self) -> Decimal:
        return self.actual.cost - self.proposed.cost


def _hourly_usage(
    model: ServedModel, start: dt.datetime, end: dt.datetime
) -> dict[dt.datetime, dict[int, int]]:
    rows = (
        UsageRecord.objects.filter(model=model, bucket_start__gte=start, bucket_start__lt=end)
        .annotate(hour=TruncHour("bucket_start"))
        .values("hour", "deployment_id")
        .annotate(tokens=Sum("input_tokens") + Sum("output_tokens"))
    )
    hours: dict[dt.datetime, dict[int, int]] = {}
    for row in rows:
        hours.setdefault(row["hour"], {})[row["deployment_id"]] = int(row["tokens"] or 0)
    return hours


def whatif_replay(*, model: ServedModel, proposal: Proposal, days: int, now: dt.datetime) -> Replay:
    policy = selectors.policy_for_model(model=model)
    deployments = selectors.routable_deployments(model=model)
    ids = [d.id for d in deployments]
    currency = selectors.routing_currency()
    unit_costs = selectors.unit_costs_per_1m_tokens(deployment_ids=ids, today=now.date(), currency=currency)
    latencies = selectors.route_latencies(deployment_ids=ids, origin="")
    candidates = selectors.route_candidates(
        deployments=deployments,
        origin="",
        gateway_provider="",
        gateway_region="",
        unit_costs=unit_costs,
        latencies=latencies,
        rates={},
    )
    spec = selectors.policy_spec(policy=policy, origin="")
    actual_costs = {c.deployment_id: c.route_cost for c in candidates}
    proposed_candidates = [c for c in candidates if c.slug != proposal.removed_deployment]
    if proposal.price_slug and proposal.price_per_1m is not None:
        proposed_candidates = [
            replace(c, unit_cost=proposal.price_per_1m) if c.slug == proposal.price_slug else c
            for c in proposed_candidates
        ]
    proposed_spec = PolicySpec(
        objective=proposal.objective or spec.objective,
        latency_slo_ms=proposal.latency_slo_ms
        if proposal.latency_slo_ms is not None
        else spec.latency_slo_ms,
        cost_ceiling=spec.cost_ceiling,
        currency=spec.currency,
        allowed_residency=spec.allowed_residency,
        min_share_per_provider=(
            proposal.min_share_per_provider
            if proposal.min_share_per_provider is not None
            else spec.min_share_per_provider
        ),
        max_share_per_deployment=(
            proposal.max_share_per_deployment
            if proposal.max_share_per_deployment is not None
            else spec.max_share_per_deployment
        ),
        max_step=1.0,  # a replay asks where each hour would settle, not how fast it gets there
        hysteresis=0.0,
    )
    slo = proposed_spec.latency_slo_ms
    p95_by_id = {c.deployment_id: c.p95_ms for c in candidates}
    slug_by_id = {c.deployment_id: c.slug for c in candidates}
    hours = _hourly_usage(model, now - dt.timedelta(days=days), now)
    actual_cost = proposed_cost = Decimal(0)
    actual_latency: list[tuple[float, int]] = []
    proposed_latency: list[tuple[float, int]] = []
    actual_violations = proposed_violations = 0
    busiest: tuple[int, dict[int, float]] = (-1, {})
    total_tokens = 0
    for _hour, served in sorted(hours.items()):
        tokens = sum(served.values())
        if not tokens:
            continue
        total_tokens += tokens
        actual_cost += sum(
            Decimal(count) * actual_costs.get(d, Decimal(0)) / Decimal(1_000_000)
            for d, count in served.items()
        )
        actual_p95 = _mix_p95({d: count / tokens for d, count in served.items()}, p95_by_id)
        solution = route_solve(
            RouteProblem(candidates=tuple(proposed_candidates), policy=proposed_spec, load_tps=tokens / 3600)
        )
        weights = solution.weights if solution.weights and sum(solution.weights.values()) > 0 else {}
        costs = {c.deployment_id: c.route_cost for c in proposed_candidates}
        proposed_cost += sum(
            Decimal(tokens) * Decimal(str(share)) * costs[d] / Decimal(1_000_000)
            for d, share in weights.items()
        )
        proposed_p95 = _mix_p95(weights, p95_by_id)
        for p95, bucket in ((actual_p95, actual_latency), (proposed_p95, proposed_latency)):
            if p95 is not None:
                bucket.append((p95, tokens))
        if slo is not None:
            actual_violations += int(actual_p95 is not None and actual_p95 > slo)
            proposed_violations += int(proposed_p95 is not None and proposed_p95 > slo)
        if tokens > busiest[0]:
            busiest = (tokens, weights)
    points = solution_points(busiest[1], slug_by_id)
    return Replay(
        days=days,
        hours=len(hours),
        tokens=total_tokens,
        currency=currency,
        actual=ReplaySide(actual_cost.quantize(CENT), _weighted_mean(actual_latency), actual_violations),
        proposed=ReplaySide(
            proposed_cost.quantize(CENT), _weighted_mean(proposed_latency), proposed_violations
        ),
        proposed_weights=points,
    )


def solution_points(weights: dict[int, float], slug_by_id: dict[int, str]) -> dict[str, int]:
    from routing.optimiser import shares_to_points

    return {slug_by_id[d]: p for d, p in shares_to_points(weights).items() if d in slug_by_id}


def _mix_p95(shares: dict[int, float], p95_by_id: dict[int, float | None]) -> float | None:
    known = [
        (share, p95_by_id.get(d)) for d, share in shares.items() if share > 0 and p95_by_id.get(d) is not None
    ]
    total = sum(share for share, _ in known)
    if not total:
        return None
    return sum(share * p95 for share, p95 in known) / total


def _weighted_mean(values: list[tuple[float, int]]) -> float | None:
    total = sum(weight for _, weight in values)
    return sum(value * weight for value, weight in values) / total if total else None


def pareto_frontier(points: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """(name, cost, p95) points no other point beats on both cost and latency, cheapest first."""
    frontier = []
    best_latency = float("inf")
    for name, cost, latency in sorted(points, key=lambda p: (p[1], p[2])):
        if latency < best_latency:
            frontier.append((name, cost, latency))
            best_latency = latency
    return frontier
