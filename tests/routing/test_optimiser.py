"""The LP optimiser on small cases solvable by hand (no database: it is pure)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.optimiser import (
    Candidate,
    PolicySpec,
    RouteProblem,
    route_solve,
    shares_to_points,
)


def deployment(deployment_id: int, cost: str, **fields) -> Candidate:
    fields.setdefault("provider", "aws")
    fields.setdefault("residency", "us")
    return Candidate(deployment_id=deployment_id, slug=f"d{deployment_id}", unit_cost=Decimal(cost), **fields)


def cheapest(**fields) -> PolicySpec:
    return PolicySpec(objective="cheapest_within_slo", **fields)


def test_cheapest_within_slo_fills_the_cheapest_compliant_capacity_first():
    # A is cheapest but too slow; B is next and holds 600 of 1,000 tokens/s; C takes the rest.
    candidates = (
        deployment(1, "1.00", p95_ms=900),
        deployment(2, "2.00", p95_ms=300, capacity_tps=600, provider="gcp"),
        deployment(3, "3.00", p95_ms=200, provider="azure"),
    )
    solution = route_solve(
        RouteProblem(candidates=candidates, policy=cheapest(latency_slo_ms=500), load_tps=1000)
    )
    assert solution.feasible and solution.changed
    assert solution.points() == {1: 0, 2: 60, 3: 40}


def test_batch_traffic_ignores_the_latency_slo():
    candidates = (deployment(1, "1.00", p95_ms=900), deployment(2, "2.00", p95_ms=300))
    solution = route_solve(
        RouteProblem(candidates=candidates, policy=cheapest(latency_slo_ms=500), request_class="batch")
    )
    assert solution.points() == {1: 100, 2: 0}


def test_overflow_spills_to_the_next_cheapest_cloud_at_capacity():
    candidates = (
        deployment(1, "1.00", capacity_tps=300, provider="aws"),
        deployment(2, "1.50", capacity_tps=500, provider="gcp"),
        deployment(3, "4.00", provider="azure"),
    )
    policy = cheapest()
    below = route_solve(RouteProblem(candidates=candidates, policy=policy, load_tps=250))
    assert below.points() == {1: 100, 2: 0, 3: 0}
    above = route_solve(RouteProblem(candidates=candidates, policy=policy, load_tps=1000))
    assert above.points() == {1: 30, 2: 50, 3: 20}


def test_egress_changes_the_ranking_when_it_outweighs_the_unit_cost_gap():
    near = deployment(1, "1.50", provider="aws")
    far_cheap = deployment(2, "1.00", provider="gcp", egress_cost=Decimal("0.80"))
    far_cheaper = deployment(3, "1.00", provider="azure", egress_cost=Decimal("0.20"))
    assert route_solve(RouteProblem(candidates=(near, far_cheap), policy=cheapest())).points() == {
        1: 100,
        2: 0,
    }
    assert route_solve(RouteProblem(candidates=(near, far_cheaper), policy=cheapest())).points() == {
        1: 0,
        3: 100,
    }


def test_max_step_limits_each_move_from_the_last_weights():
    candidates = (deployment(1, "1.00"), deployment(2, "2.00", provider="gcp"))
    policy = cheapest(max_step=0.2)
    first = route_solve(RouteProblem(candidates=candidates, policy=policy, last_weights={1: 0.3, 2: 0.7}))
    assert first.points() == {1: 50, 2: 50}
    second = route_solve(RouteProblem(candidates=candidates, policy=policy, last_weights=first.weights))
    assert second.points() == {1: 70, 2: 30}


def test_hysteresis_keeps_the_last_weights_for_a_small_move():
    candidates = (deployment(1, "1.00", capacity_tps=510), deployment(2, "2.00", provider="gcp"))
    last = {1: 0.5, 2: 0.5}
    held = route_solve(
        RouteProblem(
            candidates=candidates, policy=cheapest(hysteresis=0.02), load_tps=1000, last_weights=last
        )
    )
    assert held.feasible and not held.changed
    assert held.weights == last
    moved = route_solve(
        RouteProblem(
            candidates=candidates, policy=cheapest(hysteresis=0.005), load_tps=1000, last_weights=last
        )
    )
    assert moved.changed and moved.points() == {1: 51, 2: 49}


def test_an_infeasible_policy_keeps_the_last_weights_and_names_the_constraint():
    candidates = (
        deployment(1, "1.00", provider="aws"),
        deployment(2, "2.00", provider="gcp"),
        deployment(3, "3.00", provider="azure"),
    )
    last = {1: 0.6, 2: 0.3, 3: 0.1}
    solution = route_solve(
        RouteProblem(candidates=candidates, policy=cheapest(min_share_per_provider=0.4), last_weights=last)
    )
    assert not solution.feasible and not solution.changed
    assert solution.weights == last
    assert solution.failed_constraint == "min_share_per_provider"
    assert "40%" in solution.message


def test_load_above_all_capacity_is_reported_as_capacity():
    candidates = (deployment(1, "1.00", capacity_tps=100), deployment(2, "2.00", capacity_tps=100))
    solution = route_solve(
        RouteProblem(candidates=candidates, policy=cheapest(), load_tps=500, last_weights={1: 0.5, 2: 0.5})
    )
    assert solution.failed_constraint == "capacity"
    assert "500 tokens/s" in solution.message and "200 tokens/s" in solution.message
    assert solution.weights == {1: 0.5, 2: 0.5}


def test_a_first_route_under_overload_gets_weights_with_capacity_relaxed_not_an_empty_route():
    # Nothing earlier to keep: an empty route would leave the gateway with no backend at all.
    candidates = (
        deployment(1, "1.00", capacity_tps=100),
        deployment(2, "2.00", provider="gcp", capacity_tps=100),
    )
    solution = route_solve(
        RouteProblem(candidates=candidates, policy=cheapest(max_share_per_deployment=0.7), load_tps=500)
    )
    assert not solution.feasible and solution.changed
    assert solution.failed_constraint == "capacity"
    assert "No earlier weights to keep" in solution.message and "capacity relaxed" in solution.message
    assert solution.points() == {1: 70, 2: 30}


def test_min_share_per_provider_keeps_a_warm_standby_share_on_each_cloud():
    candidates = (
        deployment(1, "1.00", provider="aws"),
        deployment(2, "2.00", provider="gcp"),
        deployment(3, "5.00", provider="azure"),
    )
    solution = route_solve(RouteProblem(candidates=candidates, policy=cheapest(min_share_per_provider=0.1)))
    assert solution.points() == {1: 80, 2: 10, 3: 10}


def test_active_passive_standby_gets_traffic_only_when_the_primary_cannot_carry_it():
    primary = deployment(1, "3.00", capacity_tps=1000)
    standby = deployment(2, "1.00", provider="gcp", warm_standby=True)
    policy = cheapest()
    assert route_solve(RouteProblem(candidates=(primary, standby), policy=policy, load_tps=800)).points() == {
        1: 100,
        2: 0,
    }
    assert route_solve(
        RouteProblem(candidates=(primary, standby), policy=policy, load_tps=1250)
    ).points() == {
        1: 80,
        2: 20,
    }


def test_a_drained_deployment_gets_nothing_and_its_share_moves_beyond_max_step():
    candidates = (deployment(1, "1.00", drained=True), deployment(2, "2.00"), deployment(3, "3.00"))
    solution = route_solve(
        RouteProblem(
            candidates=candidates,
            policy=cheapest(max_step=0.1, hysteresis=0.5),
            last_weights={1: 0.8, 2: 0.2},
        )
    )
    assert solution.changed
    assert solution.points() == {1: 0, 2: 100, 3: 0}


def test_a_spot_notice_moves_the_load_to_the_pair_even_when_another_is_cheaper():
    spot = deployment(1, "0.50", spot_pair_id=3, drained=True)
    cheap = deployment(2, "1.00", provider="gcp")
    pair = deployment(3, "2.00")
    solution = route_solve(
        RouteProblem(
            candidates=(spot, cheap, pair),
            policy=cheapest(max_step=0.1),
            last_weights={1: 0.6, 2: 0.3, 3: 0.1},
        )
    )
    assert solution.points() == {1: 0, 2: 30, 3: 70}


def test_a_restoring_deployment_is_capped():
    candidates = (deployment(1, "1.00", restore_cap=0.25), deployment(2, "2.00"))
    assert route_solve(RouteProblem(candidates=candidates, policy=cheapest())).points() == {1: 25, 2: 75}


def test_fastest_within_a_cost_ceiling():
    candidates = (deployment(1, "1.00", p95_ms=800), deployment(2, "3.00", p95_ms=200))
    policy = PolicySpec(objective="fastest_within_budget", cost_ceiling=Decimal("2.00"))
    # Average cost w·3 + (1-w)·1 <= 2 -> at most half on the fast one.
    assert route_solve(RouteProblem(candidates=candidates, policy=policy)).points() == {1: 50, 2: 50}
    too_low = PolicySpec(objective="fastest_within_budget", cost_ceiling=Decimal("0.50"))
    solution = route_solve(RouteProblem(candidates=candidates, policy=too_low))
    assert solution.failed_constraint == "cost_ceiling"


def test_excluded_providers_get_nothing():
    candidates = (deployment(1, "1.00", provider="aws"), deployment(2, "2.00", provider="gcp"))
    solution = route_solve(
        RouteProblem(candidates=candidates, policy=cheapest(), excluded_providers=("aws",))
    )
    assert solution.points() == {1: 0, 2: 100}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=Decimal("0.1"), max_value=Decimal("20"), places=2),
            st.sampled_from(["eu", "us", "apac"]),
            st.sampled_from(["aws", "gcp", "azure"]),
            st.one_of(st.none(), st.floats(min_value=50, max_value=2000)),
            st.floats(min_value=50, max_value=3000),
        ),
        min_size=1,
        max_size=8,
    ),
    st.sets(st.sampled_from(["eu", "us", "apac"]), min_size=1),
    st.floats(min_value=0, max_value=5000),
    st.sampled_from(["cheapest_within_slo", "balanced", "fastest_within_budget"]),
)
def test_residency_is_never_violated_and_weights_add_up(rows, allowed, load, objective):
    candidates = tuple(
        deployment(
            index, str(cost), residency=residency, provider=provider, capacity_tps=capacity, p95_ms=p95
        )
        for index, (cost, residency, provider, capacity, p95) in enumerate(rows)
    )
    policy = PolicySpec(objective=objective, allowed_residency=tuple(sorted(allowed)), latency_slo_ms=400)
    solution = route_solve(RouteProblem(candidates=candidates, policy=policy, load_tps=load))
    if solution.feasible:
        assert sum(solution.points().values()) == 100
        assert pytest.approx(sum(solution.weights.values()), abs=1e-6) == 1
        for candidate in candidates:
            if candidate.residency not in allowed:
                assert solution.weights[candidate.deployment_id] == 0
            if candidate.capacity_tps is not None and load > 0:
                assert solution.weights[candidate.deployment_id] * load <= candidate.capacity_tps + 1e-6
    else:
        assert solution.failed_constraint in ("residency", "capacity")
        if solution.failed_constraint == "residency":
            # Nowhere allowed to send it: no weight anywhere, never a residency breach.
            assert solution.weights == {c.deployment_id: 0.0 for c in candidates}
        else:
            # Over capacity with nothing earlier to keep: published with capacity relaxed, residency kept.
            assert solution.changed and "capacity relaxed" in solution.message
            assert sum(solution.points().values()) == 100
            for candidate in candidates:
                if candidate.residency not in allowed:
                    assert solution.weights[candidate.deployment_id] == 0


@given(st.dictionaries(st.integers(0, 50), st.floats(min_value=0, max_value=1), min_size=1, max_size=12))
@settings(max_examples=60)
def test_points_always_add_up_to_100(raw):
    total = sum(raw.values())
    if total == 0:
        return
    points = shares_to_points({k: v / total for k, v in raw.items()})
    assert sum(points.values()) == 100
    assert all(p >= 0 for p in points.values())


def test_a_drain_is_applied_even_when_the_policy_then_becomes_infeasible():
    # Only one deployment left and a 70% maximum share: infeasible, but the dead one must be emptied.
    candidates = (deployment(1, "1.00", drained=True), deployment(2, "2.00", provider="gcp"))
    solution = route_solve(
        RouteProblem(
            candidates=candidates,
            policy=cheapest(max_share_per_deployment=0.7),
            last_weights={1: 0.7, 2: 0.3},
        )
    )
    assert not solution.feasible and solution.changed
    assert solution.failed_constraint == "max_share"
    assert "relaxed" in solution.message
    assert solution.points() == {1: 0, 2: 100}


def test_routes_solved_together_match_routes_solved_alone():
    from routing.optimiser import routes_solve

    candidates = (
        deployment(1, "1.00", capacity_tps=300, p95_ms=700),
        deployment(2, "1.50", capacity_tps=500, provider="gcp", p95_ms=200),
        deployment(3, "4.00", provider="azure", p95_ms=100),
    )
    problems = [
        RouteProblem(candidates=candidates, policy=cheapest(latency_slo_ms=500), load_tps=1000),
        RouteProblem(candidates=candidates, policy=cheapest(), request_class="batch", load_tps=400),
        RouteProblem(
            candidates=candidates, policy=PolicySpec(objective="balanced", min_share_per_provider=0.1)
        ),
        # Infeasible: the batch falls back to solving each alone, and this one keeps its weights.
        RouteProblem(
            candidates=candidates,
            policy=cheapest(min_share_per_provider=0.5),
            last_weights={1: 0.2, 2: 0.3, 3: 0.5},
        ),
    ]
    together = routes_solve(problems)
    alone = [route_solve(problem) for problem in problems]
    assert [s.points() for s in together] == [s.points() for s in alone]
    assert together[0].points() == {1: 0, 2: 50, 3: 50}
    assert together[3].failed_constraint == "min_share_per_provider"
    assert routes_solve(problems[:3]) == alone[:3]
