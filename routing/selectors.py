"""Reads of the routing layer: what the optimiser needs, gathered from attribution, governance and
routing's own tables. Attribution's models are read only here (and in the usage view), so when its
modules move only these imports change."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, Sum
from django.db.models.functions import TruncHour

from attribution.models import Deployment, ExchangeRate, PriceCard, ServedModel, UnitCost, UsageRecord
from routing.choices import EgressScope, Health
from routing.models import (
    DeploymentRouting,
    EgressRate,
    Gateway,
    PolicyDocument,
    RouteLatency,
    RouteState,
    RoutingPolicy,
    WeightPin,
)
from routing.optimiser import Candidate, PolicySpec

# How many days of unit costs make a deployment's price: smooths one odd day, follows a change.
UNIT_COST_DAYS = 7
# Average JSON request + response bytes per token when no gateway has reported it.
DEFAULT_BYTES_PER_TOKEN = Decimal("4")
ROUTABLE_STATES = ("active", "draining")


class MissingUnitCostError(ValueError):
    """A deployment has neither unit costs nor a price card: it cannot be priced, so not routed."""


@dataclass(frozen=True)
class EnforcementView:
    """governance.selectors.EnforcementState, read by attribute so either side may add fields."""

    budget_id: int
    team_id: int | None
    model_id: int | None
    provider: str
    action: str
    throttle_share: Decimal | None
    reason: str


def routing_currency() -> str:
    return getattr(settings, "REPORTING_CURRENCY", "USD")


def policy_for_model(*, model: ServedModel) -> RoutingPolicy:
    """The model's policy, or the defaults (balanced, no SLO) when nobody wrote one yet."""
    policy = RoutingPolicy.objects.filter(model=model).first()
    return policy or RoutingPolicy(model=model)


def policy_spec(*, policy: RoutingPolicy, origin: str) -> PolicySpec:
    allowed = list(policy.allowed_residency or [])
    by_origin = (policy.origin_residency or {}).get(origin)
    if by_origin:
        # Both must hold: the model's residency and the origin's (EU-origin traffic stays in the EU).
        allowed = [r for r in by_origin if not allowed or r in allowed] or ["<none>"]
    return PolicySpec(
        objective=policy.objective,
        latency_slo_ms=float(policy.latency_slo_ms) if policy.latency_slo_ms else None,
        cost_ceiling=policy.cost_ceiling_per_1m_tokens,
        currency=routing_currency(),
        allowed_residency=tuple(allowed),
        min_share_per_provider=float(policy.min_share_per_provider),
        max_share_per_deployment=float(policy.max_share_per_deployment),
        max_step=float(policy.max_step),
        hysteresis=float(policy.hysteresis),
    )


def routable_deployments(*, model: ServedModel) -> list[Deployment]:
    return list(
        Deployment.objects.filter(model=model, state__in=ROUTABLE_STATES)
        .select_related("routing")
        .order_by("slug")
    )


def _exchange_rate(*, day: dt.date, from_currency: str, to_currency: str) -> Decimal | None:
    if from_currency == to_currency:
        return Decimal(1)
    return (
        ExchangeRate.objects.filter(from_currency=from_currency, to_currency=to_currency, date__lte=day)
        .order_by("-date")
        .values_list("rate", flat=True)
        .first()
    )


def unit_costs_per_1m_tokens(
    *, deployment_ids: list[int], today: dt.date, currency: str
) -> dict[int, Decimal]:
    """Effective cost per 1M tokens (input + output) over the last UNIT_COST_DAYS days of attribution's
    unit costs, in `currency`; the price card (mean of the input and output prices) for a deployment
    without unit costs yet. A deployment with neither is missing from the result."""
    start = today - dt.timedelta(days=UNIT_COST_DAYS)
    rows = (
        UnitCost.objects.filter(deployment_id__in=deployment_ids, day__gt=start, day__lte=today)
        .values_list("deployment_id", "currency")
        .annotate(
            cost=Sum("effective_cost"), input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens")
        )
        .order_by()
    )
    # One exchange rate read per currency, not per deployment.
    rates: dict[str, Decimal | None] = {}
    totals: dict[int, list[Decimal]] = {}
    for deployment_id, row_currency, row_cost, input_tokens, output_tokens in rows:
        tokens = (input_tokens or 0) + (output_tokens or 0)
        if row_currency not in rates:
            rates[row_currency] = _exchange_rate(day=today, from_currency=row_currency, to_currency=currency)
        rate = rates[row_currency]
        if not tokens or rate is None:
            continue
        cost, count = totals.setdefault(deployment_id, [Decimal(0), Decimal(0)])
        totals[deployment_id] = [cost + row_cost * rate, count + tokens]
    prices = {
        deployment_id: (cost * Decimal(1_000_000) / tokens).quantize(Decimal("0.000001"))
        for deployment_id, (cost, tokens) in totals.items()
    }
    missing = [d for d in deployment_ids if d not in prices]
    if missing:
        cards: dict[int, dict[str, Decimal]] = {}
        for card in PriceCard.objects.filter(
            deployment_id__in=missing, unit__in=("1m_input_tokens", "1m_output_tokens"), valid_from__lte=today
        ).order_by("deployment_id", "unit", "-valid_from"):
            rate = _exchange_rate(day=today, from_currency=card.currency, to_currency=currency)
            if rate is not None:
                cards.setdefault(card.deployment_id, {}).setdefault(card.unit, card.price * rate)
        for deployment_id, by_unit in cards.items():
            prices[deployment_id] = (sum(by_unit.values()) / len(by_unit)).quantize(Decimal("0.000001"))
    return prices


def egress_rates() -> dict[tuple[str, str], Decimal]:
    return {(r.provider, r.scope): r.price_per_gb for r in EgressRate.objects.all()}


def egress_cost_per_1m_tokens(
    *,
    deployment: Deployment,
    gateway_provider: str,
    gateway_region: str,
    rates: dict[tuple[str, str], Decimal],
    bytes_per_token: Decimal | None,
) -> Decimal:
    """Data transfer out of the deployment's cloud to the gateway, per 1M tokens. Zero in the same
    cloud and region, and when the gateway's cloud is not known (blank)."""
    if not gateway_provider:
        return Decimal(0)
    if deployment.provider == gateway_provider:
        if deployment.region == gateway_region:
            return Decimal(0)
        scope = EgressScope.INTER_REGION
    else:
        scope = EgressScope.INTERNET
    price_per_gb = rates.get((deployment.provider, scope), Decimal(0))
    per_token = bytes_per_token or DEFAULT_BYTES_PER_TOKEN
    return (price_per_gb * per_token * Decimal(1_000_000) / Decimal(1_000_000_000)).quantize(
        Decimal("0.000001")
    )


def route_latencies(*, deployment_ids: list[int], origin: str) -> dict[int, float]:
    """p95 from this origin; a deployment measured only from elsewhere gets the worst of those."""
    latencies: dict[int, float] = {}
    fallback: dict[int, float] = {}
    for deployment_id, row_origin, p95 in RouteLatency.objects.filter(
        deployment_id__in=deployment_ids
    ).values_list("deployment_id", "origin", "p95_ms"):
        if row_origin == origin:
            latencies[deployment_id] = p95
        else:
            fallback[deployment_id] = max(fallback.get(deployment_id, 0.0), p95)
    return {**fallback, **latencies}


def expected_load_tps(*, model: ServedModel, now: dt.datetime) -> float:
    """The busiest hour of the last day, in tokens per second: what capacity must carry."""
    hourly = (
        UsageRecord.objects.filter(
            model=model, bucket_start__gte=now - dt.timedelta(days=1), bucket_start__lt=now
        )
        .annotate(hour=TruncHour("bucket_start"))
        .values("hour")
        .annotate(tokens=Sum("input_tokens") + Sum("output_tokens"))
        .values_list("tokens", flat=True)
    )
    busiest = max((tokens or 0 for tokens in hourly), default=0)
    return busiest / 3600.0


def route_candidates(
    *,
    deployments: list[Deployment],
    origin: str,
    gateway_provider: str,
    gateway_region: str,
    unit_costs: dict[int, Decimal],
    latencies: dict[int, float],
    rates: dict[tuple[str, str], Decimal],
) -> list[Candidate]:
    candidates = []
    for deployment in deployments:
        profile: DeploymentRouting | None = getattr(deployment, "routing", None)
        if deployment.id not in unit_costs:
            continue  # cannot be priced: left out (the evaluation reports it)
        candidates.append(
            Candidate(
                deployment_id=deployment.id,
                slug=deployment.slug,
                provider=deployment.provider,
                residency=deployment.residency_region,
                unit_cost=unit_costs[deployment.id],
                egress_cost=egress_cost_per_1m_tokens(
                    deployment=deployment,
                    gateway_provider=gateway_provider,
                    gateway_region=gateway_region,
                    rates=rates,
                    bytes_per_token=profile.bytes_per_token if profile else None,
                ),
                p95_ms=latencies.get(deployment.id),
                capacity_tps=float(profile.capacity_tps) if profile and profile.capacity_tps else None,
                drained=bool(profile and profile.drained) or deployment.state == "draining",
                restore_cap=float(profile.restore_cap)
                if profile and profile.health == Health.RESTORING and profile.restore_cap
                else None,
                warm_standby=bool(profile and profile.warm_standby),
                spot_pair_id=profile.spot_pair_id if profile else None,
            )
        )
    return candidates


def route_origins(*, model: ServedModel) -> list[tuple[str, str, str]]:
    """(origin, gateway provider, gateway region) of every origin whose gateways serve the model;
    one entry with no origin when no gateway declares one."""
    origins: dict[str, tuple[str, str, str]] = {}
    for gateway in Gateway.objects.filter(served_models=model).order_by("slug"):
        for origin in gateway.origins:
            # A client-tagged origin is reached through this gateway: egress is from its region.
            origins.setdefault(origin, (origin, gateway.origin_provider, gateway.origin_region))
    return list(origins.values()) or [("", "", "")]


def route_states(*, model_ids: list[int]) -> list[RouteState]:
    return list(RouteState.objects.filter(model_id__in=model_ids))


def pins_active(*, model: ServedModel, now: dt.datetime) -> list[WeightPin]:
    return list(WeightPin.objects.filter(model=model, expires_at__gt=now).order_by("-created_at"))


def pin_for_route(*, pins: list[WeightPin], request_class: str, origin: str) -> WeightPin | None:
    """The newest pin that covers the route (a blank class or origin covers all)."""
    for pin in pins:
        if pin.request_class in ("", request_class) and pin.origin in ("", origin):
            return pin
    return None


def enforcement_states(*, at: dt.datetime | None = None) -> list[EnforcementView]:
    """Budget actions in force, from governance's selector (empty while governance has none)."""
    from governance import selectors as governance_selectors

    active = getattr(governance_selectors, "enforcement_active", None)
    if active is None:
        return []
    return [
        EnforcementView(
            budget_id=state.budget_id,
            team_id=state.team_id,
            model_id=state.model_id,
            provider=state.provider or "",
            action=state.action,
            throttle_share=state.throttle_share,
            reason=state.reason,
        )
        for state in active(at=at)
    ]


def quotas_effective(*, team_id: int | None = None, model_id: int | None = None) -> list:
    from governance import selectors as governance_selectors

    effective = getattr(governance_selectors, "quotas_effective", None)
    return list(effective(team_id=team_id, model_id=model_id)) if effective else []


def latest_document(*, gateway: Gateway) -> PolicyDocument | None:
    return PolicyDocument.objects.filter(gateway=gateway).order_by("-version").first()


def latest_document_tag(*, gateway_id: int) -> tuple[int, str] | None:
    """(version, content hash) of the current document: all a conditional GET needs."""
    return (
        PolicyDocument.objects.filter(gateway_id=gateway_id)
        .order_by("-version")
        .values_list("version", "content_hash")
        .first()
    )


def gateways_lagging(*, now: dt.datetime, deadline: dt.timedelta) -> list[tuple[Gateway, PolicyDocument]]:
    """Gateways whose latest document is older than `deadline` and not reported as applied."""
    lagging = []
    for gateway in Gateway.objects.all():
        document = latest_document(gateway=gateway)
        if document is None or document.created_at > now - deadline:
            continue
        if gateway.applied_version is None or gateway.applied_version < document.version:
            lagging.append((gateway, document))
    return lagging


def deployments_to_probe() -> list[DeploymentRouting]:
    return list(
        DeploymentRouting.objects.select_related("deployment")
        .filter(deployment__state__in=ROUTABLE_STATES)
        .filter(~Q(probe_url="") | ~Q(deployment__endpoint_url=""))
        .order_by("deployment__slug")
    )
