"""Model and deployment slugs with dots (`llama-3.1-70b`, the shape real model names have): created
through the Settings pages, then opened on every page and API that names them by slug."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from attribution.dimensions.services import served_model_save, team_save
from attribution.models import Deployment, ServedModel
from attribution.slugs import dimension_slugify, validate_dimension_slug
from routing import services
from routing.models import Gateway
from tests.personas import personas_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return personas_create()


def _deployment_values(model: ServedModel, slug: str) -> dict:
    return {
        "slug": slug,
        "model": model.pk,
        "provider": "aws",
        "region": "us-east-1",
        "residency_region": "us",
        "gpu_count": "8",
        "pricing_mode": "on_demand",
        "capacity_rps": "35",
        "state": "active",
        "endpoint_url": "https://llama.example.com/v1",
    }


def test_a_dotted_model_and_deployment_are_created_in_settings_and_then_open(world):
    admin: Client = world["clients"]["admin"]
    created = admin.post("/settings/models/", {"name": "Llama 3.1 70B", "slug": "llama-3.1-70b"})
    assert created.status_code in (200, 302), created.content.decode()[:500]
    model = ServedModel.objects.get(slug="llama-3.1-70b")
    new_deployment = f"/settings/models/{model.pk}/deployments/new"
    saved = admin.post(new_deployment, _deployment_values(model, "llama-3.1-70b-aws.h100"))
    assert saved.status_code == 302, saved.content.decode()[:2000]
    deployment = Deployment.objects.get(slug="llama-3.1-70b-aws.h100")
    assert deployment.model == model

    gateway = Gateway.objects.create(
        name="Edge", slug="edge", kind="pull_only", origin_provider="aws", origin_region="us-east-1"
    )
    gateway.served_models.add(model)  # the routing index lists the models a gateway serves
    finance: Client = world["clients"]["finance"]
    index = finance.get("/routing/")
    assert index.status_code == 200
    assert 'href="/routing/models/llama-3.1-70b/"' in index.content.decode()
    page = finance.get("/routing/models/llama-3.1-70b/")
    assert page.status_code == 200
    assert "llama-3.1-70b-aws.h100" in page.content.decode()
    accuracy = finance.get("/estimates/llama-3.1-70b-aws.h100/")
    assert accuracy.status_code == 200
    assert "llama-3.1-70b-aws.h100" in accuracy.content.decode()
    assert finance.get("/routing/models/llama-3.1-71b/").status_code == 404
    assert finance.get("/estimates/llama-3.1-70b-aws.a100/").status_code == 404


def test_a_model_slug_made_from_its_name_keeps_the_dots(world):
    model = served_model_save(name="Mistral 7B v0.3", actor=world["users"]["admin"])
    assert model.slug == "mistral-7b-v0.3"
    assert dimension_slugify("Llama 3.1 -- 70B / Instruct") == "llama-3.1-70b-instruct"


@pytest.mark.parametrize("slug", [".llama", "llama..70b", "llama 3.1", "llama/3.1", "llama-3.1?"])
def test_it_rejects_slugs_that_are_not_slugs_and_stores_nothing(world, slug):
    admin: Client = world["clients"]["admin"]
    response = admin.post("/settings/models/", {"name": "Llama", "slug": slug})
    assert response.status_code == 400
    assert "is not a slug" in response.content.decode()
    assert not ServedModel.objects.exists()
    with pytest.raises(ValidationError):
        validate_dimension_slug(slug)


def test_team_slugs_stay_plain_slugs(world):
    with pytest.raises(ValidationError) as raised:
        team_save(name="Gamma", slug="gamma.1", actor=world["users"]["admin"])
    assert "slug" in raised.value.message_dict


def test_a_gateway_reports_the_status_of_a_dotted_deployment(world):
    model = ServedModel.objects.create(name="llama-3.1-70b", slug="llama-3.1-70b")
    Deployment.objects.create(
        slug="llama-3.1-70b-aws", model=model, provider="aws", region="us-east-1", pricing_mode="on_demand"
    )
    gateway = Gateway.objects.create(
        name="Edge", slug="edge", kind="pull_only", origin_provider="aws", origin_region="us-east-1"
    )
    gateway.served_models.add(model)
    token = services.gateway_token_rotate(gateway=gateway, actor=None)
    response = Client().post(
        "/api/v1/gateways/self/status",
        {"applied_version": None, "deployments": [{"deployment": "llama-3.1-70b-aws", "healthy": True}]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 200, response.content
