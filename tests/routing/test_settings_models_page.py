"""Settings → Models and deployments: everyone reads the inventory, only admin creates and edits; a
deployment and its routing profile are validated together (a bad value stores nothing in either),
audited, and the list's queries do not grow with its rows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from attribution.models import Deployment, ServedModel
from governance.models import AuditEvent
from routing.models import DeploymentRouting
from tests.factories import CloudAccountFactory, DeploymentFactory, ServedModelFactory
from tests.personas import PERSONAS, personas_create

pytestmark = pytest.mark.django_db
URL = "/settings/models/"


@pytest.fixture
def world():
    world = personas_create()
    world["model"] = ServedModelFactory(slug="llama-70b", name="llama-3.1-70b")
    world["account"] = CloudAccountFactory(slug="aws-prod", provider="aws")
    world["on_demand"] = DeploymentFactory(
        slug="llama-aws-od",
        model=world["model"],
        account=world["account"],
        accelerator="nvidia-h100-80gb",
        capacity_rps=Decimal("40"),
    )
    DeploymentRouting.objects.create(deployment=world["on_demand"], capacity_tps=Decimal("9000"))
    return world


def _deployment_values(world, **overrides) -> dict:
    values = {
        "slug": "llama-aws-spot",
        "model": world["model"].pk,
        "provider": "aws",
        "account": world["account"].pk,
        "region": "us-east-1",
        "residency_region": "us",
        "accelerator": "nvidia-h100-80gb",
        "instance_type": "p5.48xlarge",
        "gpu_count": "8",
        "pricing_mode": "spot",
        "capacity_rps": "35",
        "capacity_tps": "8000",
        "spot_pair": world["on_demand"].pk,
        "state": "active",
        "endpoint_url": "https://llama.example.com/v1",
    }
    values.update(overrides)
    return values


@pytest.mark.parametrize("persona", PERSONAS)
def test_everyone_reads_the_inventory_and_only_admin_edits_it(world, persona):
    client = world["clients"][persona]
    response = client.get(URL)
    if persona == "anonymous":
        assert response.status_code == 302 and "/login/" in response["Location"]
    else:
        assert response.status_code == 200
        html = response.content.decode()
        assert 'id="deployment-llama-aws-od"' in html and "nvidia-h100-80gb" in html and "9000" in html
        is_admin = persona == "admin"
        assert ('id="model-form"' in html) is is_admin
        assert (f'href="/settings/deployments/{world["on_demand"].pk}/"' in html) is is_admin
        assert (f'href="/settings/models/{world["model"].pk}/deployments/new"' in html) is is_admin
    editable = persona == "admin"
    expected = 200 if editable else 302 if persona == "anonymous" else 403
    assert client.get(f"/settings/deployments/{world['on_demand'].pk}/").status_code == expected
    assert client.get(f"/settings/models/{world['model'].pk}/deployments/new").status_code == expected
    assert client.get(f"/settings/models/{world['model'].pk}/").status_code == expected
    client.post(URL, {"name": "mistral-large"})
    client.post(f"/settings/models/{world['model'].pk}/deployments/new", _deployment_values(world))
    assert ServedModel.objects.filter(name="mistral-large").exists() is editable
    assert Deployment.objects.filter(slug="llama-aws-spot").exists() is editable


def test_an_admin_creates_a_spot_deployment_with_its_routing_fields_audited(world):
    client = world["clients"]["admin"]
    response = client.post(f"/settings/models/{world['model'].pk}/deployments/new", _deployment_values(world))
    assert response.status_code == 302
    deployment = Deployment.objects.get(slug="llama-aws-spot")
    assert (
        deployment.pricing_mode,
        deployment.capacity_rps,
        deployment.gpu_count,
        deployment.residency_region,
    ) == (
        "spot",
        Decimal("35.000"),
        8,
        "us",
    )
    profile = deployment.routing
    assert (profile.capacity_tps, profile.spot_pair, profile.warm_standby) == (
        Decimal("8000.000"),
        world["on_demand"],
        False,
    )
    types = set(AuditEvent.objects.filter(actor_label="ada").values_list("object_type", "action"))
    assert types == {("attribution.deployment", "create"), ("routing.deploymentrouting", "create")}
    # Editing: drain it and make it a warm standby; the change is audited with before and after.
    values = _deployment_values(world, state="draining", warm_standby="on")
    del values["slug"]
    assert client.post(f"/settings/deployments/{deployment.pk}/", values).status_code == 302
    deployment.refresh_from_db()
    assert (
        deployment.state == "draining" and DeploymentRouting.objects.get(deployment=deployment).warm_standby
    )
    update = AuditEvent.objects.get(object_type="attribution.deployment", action="update")
    assert update.changes == {"before": {"state": "active"}, "after": {"state": "draining"}}
    routing_update = AuditEvent.objects.get(object_type="routing.deploymentrouting", action="update")
    assert routing_update.changes == {"before": {"warm_standby": False}, "after": {"warm_standby": True}}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"capacity_tps": "0"}, "Capacity must be more than 0 tokens per second"),
        ({"capacity_rps": "-2"}, "Capacity must be more than 0 requests per second"),
        ({"pricing_mode": "on_demand"}, "Only a spot deployment has a spot pair"),
        ({"provider": "gcp"}, "pick an account of the same provider"),
        ({"slug": "llama-aws-od"}, "A deployment with the slug &#x27;llama-aws-od&#x27; already exists."),
        ({"slug": "Not a slug"}, "is not a slug"),
        ({"region": ""}, "Region: This field is required."),
        ({"endpoint_url": "ftp://x"}, "Endpoint URL: Enter a valid URL."),
    ],
)
def test_a_bad_deployment_is_refused_clearly_and_stores_nothing(world, overrides, message):
    before = (Deployment.objects.count(), DeploymentRouting.objects.count())
    response = world["clients"]["admin"].post(
        f"/settings/models/{world['model'].pk}/deployments/new", _deployment_values(world, **overrides)
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert (Deployment.objects.count(), DeploymentRouting.objects.count()) == before
    assert not AuditEvent.objects.exists()


def test_a_spot_pair_must_serve_the_same_model_on_demand(world):
    other = DeploymentFactory(slug="mistral-od", model=ServedModelFactory(slug="mistral", name="mistral"))
    response = world["clients"]["admin"].post(
        f"/settings/models/{world['model'].pk}/deployments/new", _deployment_values(world, spot_pair=other.pk)
    )
    assert response.status_code == 400 and "serves another model" in response.content.decode()


def test_models_are_added_and_renamed_with_clear_errors(world):
    client = world["clients"]["admin"]
    assert client.post(URL, {"name": "Mistral Large 2", "family": "mistral"}).status_code == 302
    served = ServedModel.objects.get(name="Mistral Large 2")
    assert served.slug == "mistral-large-2"
    duplicate = client.post(URL, {"name": "LLAMA-3.1-70B"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.content.decode()
    assert (
        client.post(
            f"/settings/models/{served.pk}/", {"name": "Mistral Large", "family": "mistral"}
        ).status_code
        == 302
    )
    served.refresh_from_db()
    assert (served.name, served.slug) == ("Mistral Large", "mistral-large-2")
    assert list(
        AuditEvent.objects.filter(object_type="attribution.servedmodel")
        .values_list("action", flat=True)
        .order_by("id")
    ) == ["create", "update"]


def test_the_list_pages_and_its_queries_do_not_grow(world, django_assert_max_num_queries):
    for index in range(60):
        deployment = DeploymentFactory(slug=f"d{index:02d}", model=world["model"], account=world["account"])
        DeploymentRouting.objects.create(deployment=deployment, spot_pair=world["on_demand"])
    with django_assert_max_num_queries(12):
        html = world["clients"]["viewer"].get(URL).content.decode()
    assert "Page 1 of 2" in html and "61 rows" in html
    assert html.count("<code>llama-aws-od</code>") >= 49  # spot pairs shown without a query each
