from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from attribution.models import Deployment, PriceCard, ServedModel, UnitCost
from routing.models import DeploymentRouting, Gateway, RoutingPolicy
from routing.services import gateway_token_rotate
from tests.factories import DeploymentFactory, ServedModelFactory


def unit_cost_record(deployment: Deployment, *, cost_per_1m: str, days: int = 3) -> None:
    """Attribution's unit costs for the last `days` days: 1M tokens a day at `cost_per_1m`."""
    today = timezone.now().date()
    for offset in range(days):
        UnitCost.objects.create(
            day=today - dt.timedelta(days=offset),
            model=deployment.model,
            deployment=deployment,
            provider=deployment.provider,
            currency="USD",
            effective_cost=Decimal(cost_per_1m),
            requests=1000,
            input_tokens=600_000,
            output_tokens=400_000,
        )


def routed_deployment(
    model: ServedModel, slug: str, *, cost_per_1m: str, provider: str = "aws", endpoint: str = "", **routing
) -> Deployment:
    deployment = DeploymentFactory(
        slug=slug,
        model=model,
        provider=provider,
        region={"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus"}[provider],
        residency_region="us",
        endpoint_url=endpoint,
    )
    unit_cost_record(deployment, cost_per_1m=cost_per_1m)
    DeploymentRouting.objects.create(deployment=deployment, **routing)
    return deployment


@pytest.fixture
def llama() -> ServedModel:
    model = ServedModelFactory(slug="llama-70b", name="llama-70b")
    RoutingPolicy.objects.create(model=model, objective="cheapest_within_slo", max_step=1, hysteresis=0)
    return model


@pytest.fixture
def pull_gateway(llama) -> tuple[Gateway, str]:
    gateway = Gateway.objects.create(
        name="Edge US", slug="edge-us", kind="pull_only", origin_provider="aws", origin_region="us-east-1"
    )
    gateway.served_models.add(llama)
    token = gateway_token_rotate(gateway=gateway, actor=None)
    return gateway, token


def price_card(deployment: Deployment, price: str) -> None:
    PriceCard.objects.create(
        deployment=deployment, unit="1m_input_tokens", price=Decimal(price), valid_from=dt.date(2026, 1, 1)
    )
    PriceCard.objects.create(
        deployment=deployment, unit="1m_output_tokens", price=Decimal(price), valid_from=dt.date(2026, 1, 1)
    )
