"""Routing weights from a linear program (scipy.optimize.linprog, HiGHS).

Pure: no database. `routing.selectors` gathers the inputs (unit costs from attribution, latencies
from gateway reports, health, the policy), `routing.services` stores what comes out.

One LP per route (model × request class × origin [× team for a budget reroute]). The variables are
the shares w_i of the route's traffic that each deployment gets:

    minimise   Σ c_i·w_i              c_i depends on the objective (below)
    subject to Σ w_i = 1
               w_i·L ≤ capacity_i     (L = expected tokens/s of the route): overflow spills over
               Σ_{i∈p} w_i ≥ m        for every provider p with an eligible deployment (warm standby)
               lo_i ≤ w_i ≤ hi_i      max share, restore cap, max step from the last weights
               Σ cost_i·w_i ≤ ceiling (fastest within a cost ceiling)

Objectives (cost_i = unit cost per 1M tokens + egress per 1M tokens from this origin):
- cheapest within SLO: c_i = cost_i, plus a penalty for a deployment whose p95 from this origin is
  above the SLO (realtime only), so it gets traffic only when the compliant ones are full;
- fastest within a cost ceiling: c_i = p95_i, with the ceiling as a constraint;
- balanced: c_i = cost_i / mean cost + p95_i / mean p95.
Batch traffic ignores latency: it always takes the cheapest eligible capacity.
A warm standby (active-passive) carries a penalty above every other term: it is used only when the
active deployments cannot carry the load.

Deployments that are unhealthy, interrupted or outside the origin's residency get w_i = 0, and the
share a drained deployment held may move at once (max step limits cost moves, not failover). A
drained spot deployment's share goes to its on-demand pair first.

An infeasible LP names the constraint that failed: the constraints are dropped one family at a time
and the first family whose removal makes it feasible is reported. The caller keeps the last weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from attribution.design import money_text

# Above any real cost or latency term: only used when nothing else can take the load.
SLO_PENALTY = 1e6
STANDBY_PENALTY = 1e9
POINTS = 100  # weights are published as whole points out of 100

OBJECTIVE_CHEAPEST = "cheapest_within_slo"
OBJECTIVE_FASTEST = "fastest_within_budget"
OBJECTIVE_BALANCED = "balanced"
CLASS_REALTIME = "realtime"
CLASS_BATCH = "batch"


@dataclass(frozen=True)
class Candidate:
    """One deployment as a route from one origin sees it."""

    deployment_id: int
    slug: str
    provider: str
    residency: str
    unit_cost: Decimal  # per 1M tokens, in the route's currency
    egress_cost: Decimal = Decimal(0)  # per 1M tokens, from this origin
    p95_ms: float | None = None  # None: not measured yet (counts as meeting the SLO)
    capacity_tps: float | None = None  # None: unbounded
    drained: bool = False
    restore_cap: float | None = None
    warm_standby: bool = False
    spot_pair_id: int | None = None

    @property
    def route_cost(self) -> Decimal:
        return self.unit_cost + self.egress_cost


@dataclass(frozen=True)
class PolicySpec:
    objective: str = OBJECTIVE_BALANCED
    latency_slo_ms: float | None = None
    cost_ceiling: Decimal | None = None  # per 1M tokens, in `currency`
    currency: str = "USD"  # of the unit costs and the ceiling (the reporting currency)
    allowed_residency: tuple[str, ...] = ()  # empty: anywhere
    min_share_per_provider: float = 0.0
    max_share_per_deployment: float = 1.0
    max_step: float = 1.0
    hysteresis: float = 0.0


@dataclass(frozen=True)
class RouteProblem:
    candidates: tuple[Candidate, ...]
    policy: PolicySpec
    request_class: str = CLASS_REALTIME
    load_tps: float = 0.0
    # The last good shares by deployment id (empty: first publish).
    last_weights: dict[int, float] = field(default_factory=dict)
    excluded_providers: tuple[str, ...] = ()  # a budget reroute away from a provider


@dataclass(frozen=True)
class RouteSolution:
    feasible: bool
    # Shares summing to 1: the last weights when infeasible, unless a drain forced a relaxed solve
    # (then feasible is False, changed True, and the message says what was relaxed).
    weights: dict[int, float]
    changed: bool  # False when hysteresis (or infeasibility) kept the last weights
    failed_constraint: str = ""
    message: str = ""

    def points(self) -> dict[int, int]:
        return shares_to_points(self.weights)


# Families of constraints, in the order they are dropped to find the one that failed.
CONSTRAINT_FAMILIES = ("max_step", "min_share_per_provider", "cost_ceiling", "max_share", "capacity")


def route_solve(problem: RouteProblem) -> RouteSolution:
    """Weights for one route, or the last weights and the failing constraint when infeasible."""
    eligible = [c for c in problem.candidates if _eligible(c, problem)]
    if not eligible:
        return _keep_last(problem, "residency", _no_eligible_message(problem))
    shares = _lp(eligible, problem, dropped=())
    if shares is None:
        failed = next(
            (
                family
                for family in CONSTRAINT_FAMILIES
                if _lp(eligible, problem, dropped=(family,)) is not None
            ),
            "capacity" if _lp(eligible, problem, dropped=CONSTRAINT_FAMILIES) is None else "combined",
        )
        message = _infeasible_message(failed, eligible, problem)
        no_last_weights = not any(problem.last_weights.get(c.deployment_id, 0.0) > 0 for c in eligible)
        if _drain_pending(problem) or no_last_weights:
            # Never keep sending traffic to a drained deployment for a policy's sake, and never leave a
            # route with no weights at all because there is nothing earlier to keep (a first publish
            # under overload): relax the policy's constraints one family at a time until it fits, and
            # say so.
            # The failed family alone first (so an overload keeps max_share), then cumulatively.
            attempts = [(failed,)] if failed in CONSTRAINT_FAMILIES else []
            attempts += [CONSTRAINT_FAMILIES[:count] for count in range(1, len(CONSTRAINT_FAMILIES) + 1)]
            for dropped_families in attempts:
                relaxed = _lp(eligible, problem, dropped=dropped_families)
                if relaxed is not None:
                    weights = {c.deployment_id: 0.0 for c in problem.candidates}
                    weights.update(relaxed)
                    dropped = ", ".join(dropped_families)
                    done = (
                        "Drained anyway"
                        if _drain_pending(problem)
                        else "No earlier weights to keep: published"
                    )
                    return RouteSolution(
                        feasible=False,
                        weights=weights,
                        changed=True,
                        failed_constraint=failed,
                        message=f"{message} {done} with {dropped} relaxed.",
                    )
        return _keep_last(problem, failed, message)
    return _finish(problem, shares)


def _finish(problem: RouteProblem, shares: dict[int, float]) -> RouteSolution:
    """Hysteresis and the changed flag, once the LP has given the shares."""
    policy = problem.policy
    weights = {c.deployment_id: 0.0 for c in problem.candidates}
    weights.update(shares)
    last = problem.last_weights
    if last and policy.hysteresis > 0 and not _drain_pending(problem):
        largest_move = max(abs(weights[d] - last.get(d, 0.0)) for d in weights)
        if largest_move < policy.hysteresis:
            return RouteSolution(feasible=True, weights=_complete(problem, last), changed=False)
    changed = not last or any(abs(weights[d] - last.get(d, 0.0)) > 1e-9 for d in weights)
    return RouteSolution(feasible=True, weights=weights, changed=changed)


def _eligible(candidate: Candidate, problem: RouteProblem) -> bool:
    allowed = problem.policy.allowed_residency
    return (
        not candidate.drained
        and (not allowed or candidate.residency in allowed)
        and candidate.provider not in problem.excluded_providers
    )


def _drain_pending(problem: RouteProblem) -> bool:
    """A drained deployment still holds a share: the move is failover, never held back."""
    return any(c.drained and problem.last_weights.get(c.deployment_id, 0.0) > 0 for c in problem.candidates)


def _objective(eligible: list[Candidate], problem: RouteProblem) -> np.ndarray:
    policy = problem.policy
    costs = np.array([float(c.route_cost) for c in eligible])
    latencies = np.array([c.p95_ms if c.p95_ms is not None else np.nan for c in eligible])
    known_latency = latencies[~np.isnan(latencies)]
    fill = float(known_latency.mean()) if known_latency.size else 0.0
    latencies = np.where(np.isnan(latencies), fill, latencies)
    if problem.request_class == CLASS_BATCH:
        terms = costs.copy()
    elif policy.objective == OBJECTIVE_FASTEST:
        terms = latencies.copy()
    elif policy.objective == OBJECTIVE_BALANCED:
        cost_scale = costs.mean() or 1.0
        latency_scale = latencies.mean() or 1.0
        terms = costs / cost_scale + latencies / latency_scale
    else:
        terms = costs.copy()
        if policy.latency_slo_ms is not None:
            over = np.array(
                [c.p95_ms is not None and c.p95_ms > policy.latency_slo_ms for c in eligible], dtype=float
            )
            terms = terms + over * SLO_PENALTY
    standby = np.array([c.warm_standby for c in eligible], dtype=float)
    # A tiny tie-break on cost keeps the answer stable when terms are equal (balanced, latency).
    return terms + standby * STANDBY_PENALTY + costs * 1e-9


def _lp_parts(eligible: list[Candidate], problem: RouteProblem, *, dropped: tuple[str, ...]):
    """(objective, inequality rows, their bounds, lower bounds, upper bounds) of one route's LP."""
    policy = problem.policy
    count = len(eligible)
    lower = np.zeros(count)
    upper = np.ones(count)
    if "max_share" not in dropped:
        upper = np.minimum(upper, policy.max_share_per_deployment)
    caps = np.array([c.restore_cap if c.restore_cap is not None else 1.0 for c in eligible])
    upper = np.minimum(upper, caps)
    last = problem.last_weights
    if last and "max_step" not in dropped:
        eligible_ids = {c.deployment_id for c in eligible}
        # Held by drained, excluded or removed deployments: it may move at once, beyond the step.
        freed = sum(share for deployment_id, share in last.items() if deployment_id not in eligible_ids)
        previous = np.array([last.get(c.deployment_id, 0.0) for c in eligible])
        lower = np.maximum(lower, previous - policy.max_step)
        upper = np.minimum(upper, previous + policy.max_step + freed)
        lower = np.minimum(lower, upper)
    rows: list[np.ndarray] = []
    bounds_upper: list[float] = []
    if problem.load_tps > 0 and "capacity" not in dropped:
        capacity = np.array([c.capacity_tps if c.capacity_tps is not None else np.inf for c in eligible])
        upper = np.minimum(upper, capacity / problem.load_tps)
        lower = np.minimum(lower, upper)
    if policy.min_share_per_provider > 0 and "min_share_per_provider" not in dropped:
        for provider in sorted({c.provider for c in eligible}):
            row = np.array([-1.0 if c.provider == provider else 0.0 for c in eligible])
            rows.append(row)
            bounds_upper.append(-policy.min_share_per_provider)
    if (
        policy.objective == OBJECTIVE_FASTEST
        and policy.cost_ceiling is not None
        and problem.request_class != CLASS_BATCH
        and "cost_ceiling" not in dropped
    ):
        rows.append(np.array([float(c.route_cost) for c in eligible]))
        bounds_upper.append(float(policy.cost_ceiling))
    # A drained spot deployment's load goes to its pair first (up to what the pair may take).
    for candidate in problem.candidates:
        if candidate.drained and candidate.spot_pair_id is not None:
            pair_index = next(
                (i for i, c in enumerate(eligible) if c.deployment_id == candidate.spot_pair_id), None
            )
            if pair_index is not None:
                wanted = last.get(candidate.spot_pair_id, 0.0) + last.get(candidate.deployment_id, 0.0)
                lower[pair_index] = max(lower[pair_index], min(wanted, upper[pair_index]))
    return _objective(eligible, problem), rows, bounds_upper, lower, upper


def _lp(
    eligible: list[Candidate], problem: RouteProblem, *, dropped: tuple[str, ...]
) -> dict[int, float] | None:
    objective, rows, bounds_upper, lower, upper = _lp_parts(eligible, problem, dropped=dropped)
    result = linprog(
        c=objective,
        A_ub=np.array(rows) if rows else None,
        b_ub=np.array(bounds_upper) if rows else None,
        A_eq=np.ones((1, len(eligible))),
        b_eq=np.array([1.0]),
        bounds=list(zip(lower, upper, strict=True)),
        method="highs",
    )
    if result.status != 0:
        return None
    return {c.deployment_id: max(0.0, float(x)) for c, x in zip(eligible, result.x, strict=True)}


def routes_solve(problems: list[RouteProblem]) -> list[RouteSolution]:
    """Many routes at once: their LPs are independent, so they are stacked block-diagonally into
    one sparse LP and HiGHS solves them in one call (a fraction of the per-call overhead of one
    linprog per route). When the stack is infeasible, each route is solved on its own so the
    infeasible ones keep their weights and name their constraint."""
    solvable = []
    for problem in problems:
        eligible = [c for c in problem.candidates if _eligible(c, problem)]
        if eligible:
            solvable.append((problem, eligible))
    if not solvable:
        return [route_solve(p) for p in problems]
    # One sparse matrix built from triplets: block_diag over thousands of tiny blocks is slower
    # than the solve itself.
    objectives, lowers, uppers, ub_bounds = [], [], [], []
    eq_rows, eq_cols, ub_rows, ub_cols, ub_data = [], [], [], [], []
    offset = 0
    for index, (problem, eligible) in enumerate(solvable):
        objective, rows, bounds_upper, lower, upper = _lp_parts(eligible, problem, dropped=())
        count = len(eligible)
        objectives.append(objective)
        lowers.append(lower)
        uppers.append(upper)
        eq_rows.append(np.full(count, index))
        eq_cols.append(np.arange(offset, offset + count))
        for row, bound in zip(rows, bounds_upper, strict=True):
            nonzero = np.flatnonzero(row)
            ub_rows.append(np.full(nonzero.size, len(ub_bounds)))
            ub_cols.append(nonzero + offset)
            ub_data.append(row[nonzero])
            ub_bounds.append(bound)
        offset += count
    a_eq = sparse.csr_matrix(
        (np.ones(offset), (np.concatenate(eq_rows), np.concatenate(eq_cols))), shape=(len(solvable), offset)
    )
    a_ub = (
        sparse.csr_matrix(
            (np.concatenate(ub_data), (np.concatenate(ub_rows), np.concatenate(ub_cols))),
            shape=(len(ub_bounds), offset),
        )
        if ub_bounds
        else None
    )
    result = linprog(
        c=np.concatenate(objectives),
        A_ub=a_ub,
        b_ub=np.array(ub_bounds) if ub_bounds else None,
        A_eq=a_eq,
        b_eq=np.ones(len(solvable)),
        bounds=np.column_stack([np.concatenate(lowers), np.concatenate(uppers)]),
        method="highs",
    )
    if result.status != 0:
        return [route_solve(p) for p in problems]
    shares_by_problem: dict[int, dict[int, float]] = {}
    offset = 0
    for problem, eligible in solvable:
        values = result.x[offset : offset + len(eligible)]
        offset += len(eligible)
        shares_by_problem[id(problem)] = {
            c.deployment_id: max(0.0, float(x)) for c, x in zip(eligible, values, strict=True)
        }
    return [
        _finish(p, shares_by_problem[id(p)]) if id(p) in shares_by_problem else route_solve(p)
        for p in problems
    ]


def _complete(problem: RouteProblem, weights: dict[int, float]) -> dict[int, float]:
    full = {c.deployment_id: 0.0 for c in problem.candidates}
    full.update({d: w for d, w in weights.items() if d in full})
    return full


def _keep_last(problem: RouteProblem, failed: str, message: str) -> RouteSolution:
    # Said here, where it is true: a route published with constraints relaxed keeps nothing.
    return RouteSolution(
        feasible=False,
        weights=_complete(problem, problem.last_weights),
        changed=False,
        failed_constraint=failed,
        message=f"{message} The last weights are kept.",
    )


def _no_eligible_message(problem: RouteProblem) -> str:
    allowed = ", ".join(problem.policy.allowed_residency) or "any"
    return (
        f"No healthy deployment is allowed for this route (residency {allowed}"
        + (f", excluding {', '.join(problem.excluded_providers)}" if problem.excluded_providers else "")
        + ")."
    )


def _infeasible_message(failed: str, eligible: list[Candidate], problem: RouteProblem) -> str:
    policy = problem.policy
    if failed == "capacity":
        total = sum(c.capacity_tps or float("inf") for c in eligible)
        return (
            f"Expected load {problem.load_tps:.0f} tokens/s exceeds the eligible capacity "
            f"{total:.0f} tokens/s."
        )
    if failed == "min_share_per_provider":
        return (
            f"Minimum share per provider {policy.min_share_per_provider:.0%} cannot be met for "
            f"{len({c.provider for c in eligible})} providers within the other constraints."
        )
    if failed == "max_share":
        return (
            f"Maximum share per deployment {policy.max_share_per_deployment:.0%} × {len(eligible)} eligible "
            "deployments cannot carry all traffic."
        )
    if failed == "cost_ceiling":
        # Stored with 10 decimal places and averaged from the bill: shown in cents, as the UI shows money.
        cheapest = money_text(min(c.route_cost for c in eligible), policy.currency)
        ceiling = money_text(policy.cost_ceiling, policy.currency)
        return f"Cost ceiling {ceiling} per 1M tokens is below the cheapest route ({cheapest})."
    if failed == "max_step":
        return f"Maximum step {policy.max_step:.0%} from the last weights cannot reach a feasible mix."
    return "The constraints together cannot be met."


def shares_to_points(weights: dict[int, float], total: int = POINTS) -> dict[int, int]:
    """Whole points adding up to `total` exactly (largest remainder), ties by id for stability."""
    if not weights:
        return {}
    raw = {d: max(0.0, w) * total for d, w in weights.items()}
    floors = {d: int(np.floor(v + 1e-9)) for d, v in raw.items()}
    missing = total - sum(floors.values())
    order = sorted(raw, key=lambda d: (-(raw[d] - floors[d]), d))
    for d in order[: max(0, missing)]:
        floors[d] += 1
    return floors


def share_text(value: float) -> str:
    return str(Decimal(str(value)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))
