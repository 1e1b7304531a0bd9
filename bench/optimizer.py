"""The routing LP: solve time, and what its weights cost against cost-blind and latency-only routing.

    python bench/optimizer.py

(a) 1 model x 10 deployments, one route (median of 50 solves);
(b) 200 models x 50 deployments x 5 origins = 1,000 routes in one stacked LP (routes_solve, what
    an evaluation does per model, here all models at once), against the same routes solved one
    linprog at a time (measured on 100 of them, scaled) as the baseline of the same run;
(c) the demo company's replayed usage (seed 42, one weekday, hour by hour): every model served by
    two or more deployments, its tokens per hour routed three ways at the deployments' unit costs
    of that day (instance-hour cost / tokens served, or token prices for per-token APIs):
    the LP (cheapest within a 3 s p95 SLO, capacity-bound, 5% warm standby per provider),
    cost-blind round-robin (equal shares), latency-only (fastest first, capacity-bound).

Targets: (b) < 2 s; (c) the LP costs no more than round-robin and latency-only. No database.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import report  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://unused@127.0.0.1:1/unused")  # never connected
django.setup()  # the demo company's usage module imports models; nothing touches a database

from attribution.demo.company import company_build, token_prices_per_1m  # noqa: E402
from attribution.demo.specs import MANAGED_PER_TOKEN  # noqa: E402
from attribution.demo.usage import usage_day  # noqa: E402
from routing.optimiser import Candidate, PolicySpec, RouteProblem, route_solve, routes_solve  # noqa: E402

PROVIDERS = ("aws", "gcp", "azure")


def synthetic_candidates(rng: random.Random, count: int) -> tuple[Candidate, ...]:
    return tuple(
        Candidate(
            deployment_id=index,
            slug=f"d{index}",
            provider=PROVIDERS[index % 3],
            residency=("us", "eu")[index % 2],
            unit_cost=Decimal(str(round(rng.uniform(0.3, 6.0), 4))),
            egress_cost=Decimal(str(round(rng.uniform(0, 0.3), 4))),
            p95_ms=rng.uniform(150, 3000),
            capacity_tps=rng.uniform(400, 4000),
        )
        for index in range(count)
    )


def policy() -> PolicySpec:
    return PolicySpec(
        objective="cheapest_within_slo",
        latency_slo_ms=1500,
        min_share_per_provider=0.05,
        max_share_per_deployment=0.5,
        max_step=0.25,
        hysteresis=0.01,
    )


def bench_small() -> float:
    rng = random.Random(1)
    problem = RouteProblem(candidates=synthetic_candidates(rng, 10), policy=policy(), load_tps=5000)
    timings = []
    for _ in range(50):
        started = time.perf_counter()
        route_solve(problem)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def bench_large() -> tuple[float, float]:
    rng = random.Random(2)
    problems = []
    for _model in range(200):
        candidates = synthetic_candidates(rng, 50)
        for _origin in range(5):
            # Each origin sees its own latencies and egress.
            seen = tuple(
                Candidate(
                    **{
                        **c.__dict__,
                        "p95_ms": c.p95_ms * rng.uniform(0.7, 1.5),
                        "egress_cost": Decimal(str(round(rng.uniform(0, 0.3), 4))),
                    }
                )
                for c in candidates
            )
            problems.append(
                RouteProblem(
                    candidates=seen,
                    policy=policy(),
                    load_tps=rng.uniform(5000, 40000),
                    last_weights={c.deployment_id: 1 / 50 for c in seen},
                )
            )
    started = time.perf_counter()
    solutions = routes_solve(problems)
    stacked = time.perf_counter() - started
    assert all(abs(sum(s.weights.values()) - 1) < 1e-6 for s in solutions if s.feasible)
    sample = problems[:100]
    started = time.perf_counter()
    for problem in sample:
        route_solve(problem)
    one_by_one = (time.perf_counter() - started) * len(problems) / len(sample)
    return stacked, one_by_one


def demo_replay() -> tuple[float, float, float]:
    """Cost of one replayed day under the three routings, in USD."""
    company = company_build(seed=42)
    day = dt.date(2026, 11, 18)
    by_model = defaultdict(list)
    for spec in company.deployments:
        by_model[spec.model].append(spec)
    totals = {"lp": 0.0, "round_robin": 0.0, "latency": 0.0}
    for _model, specs in sorted(by_model.items()):
        if len(specs) < 2:
            continue
        hourly_tokens = [0.0] * 24
        candidates = []
        for index, spec in enumerate(specs):
            buckets = usage_day(company=company, deployment=spec, day=day)
            tokens = sum(b.input_tokens + b.output_tokens for b in buckets)
            for bucket in buckets:
                hourly_tokens[bucket.bucket_start.hour] += bucket.input_tokens + bucket.output_tokens
            if spec.kind == MANAGED_PER_TOKEN:
                input_price, output_price = token_prices_per_1m(spec)
                cost = (
                    sum(
                        b.input_tokens * float(input_price or 0) + b.output_tokens * float(output_price or 0)
                        for b in buckets
                    )
                    / 1e6
                )
            else:
                cost = float(spec.on_demand_rate) * spec.instance_count * 24
            if not tokens:
                continue
            per_request = spec.input_tokens_per_request + spec.output_tokens_per_request
            candidates.append(
                Candidate(
                    deployment_id=index,
                    slug=spec.slug,
                    provider=spec.provider,
                    residency=spec.residency,
                    unit_cost=Decimal(str(round(cost * 1e6 / tokens, 6))),
                    p95_ms=spec.latency_median_ms * math.exp(1.645 * spec.latency_sigma),
                    capacity_tps=float(spec.capacity_rps) * per_request if spec.capacity_rps else None,
                )
            )
        if len(candidates) < 2:
            continue
        costs = {c.deployment_id: float(c.unit_cost) for c in candidates}
        lp_policy = PolicySpec(
            objective="cheapest_within_slo", latency_slo_ms=3000, min_share_per_provider=0.05
        )
        fastest = PolicySpec(objective="fastest_within_budget")
        for tokens in hourly_tokens:
            if not tokens:
                continue
            load = tokens / 3600
            for name, spec_policy in (("lp", lp_policy), ("latency", fastest)):
                solution = route_solve(
                    RouteProblem(candidates=tuple(candidates), policy=spec_policy, load_tps=load)
                )
                if not solution.feasible:  # more load than capacity: spill evenly as a gateway would
                    solution = route_solve(
                        RouteProblem(candidates=tuple(candidates), policy=spec_policy, load_tps=0)
                    )
                totals[name] += tokens * sum(w * costs[d] for d, w in solution.weights.items()) / 1e6
            totals["round_robin"] += tokens * sum(costs.values()) / len(costs) / 1e6
    return totals["lp"], totals["round_robin"], totals["latency"]


def main() -> None:
    small = bench_small()
    stacked, one_by_one = bench_large()
    lp_cost, round_robin_cost, latency_cost = demo_replay()
    print(f"1 model x 10 deployments: {small * 1000:.1f} ms per solve (median of 50)")
    print(f"1,000 routes x 50 deployments: {stacked:.2f} s stacked, {one_by_one:.2f} s one linprog per route")
    print(
        f"demo replay, one day: LP ${lp_cost:,.2f}, round-robin ${round_robin_cost:,.2f} "
        f"(saving {100 * (1 - lp_cost / round_robin_cost):.1f}%), latency-only ${latency_cost:,.2f} "
        f"(saving {100 * (1 - lp_cost / latency_cost):.1f}%)"
    )
    report("optimizer_small_solve", small * 1000, "ms", "<", 100)
    report("optimizer_large_solve", stacked, "s", "<", 2.0)
    report("optimizer_large_speedup_vs_per_route", one_by_one / stacked, "x", ">", 1.0)
    report("optimizer_cost_vs_round_robin", lp_cost / round_robin_cost, "ratio", "<=", 1.0)
    report("optimizer_cost_vs_latency_only", lp_cost / latency_cost, "ratio", "<=", 1.0)


if __name__ == "__main__":
    main()
