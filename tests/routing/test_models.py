"""Invariants of the routing tables."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from routing.models import Gateway, PolicyDocument

pytestmark = pytest.mark.django_db


@pytest.fixture
def gateway() -> Gateway:
    return Gateway.objects.create(name="HAProxy EU", slug="haproxy-eu", kind="haproxy")


def publish(gateway: Gateway, version: int, weights: dict[str, int]) -> PolicyDocument:
    return PolicyDocument.objects.create(
        gateway=gateway, version=version, content={"weights": weights}, content_hash=f"hash-{version}"
    )


def test_it_refuses_to_change_a_published_policy_document(gateway):
    document = publish(gateway, 1, {"llama-aws": 70, "llama-gcp": 30})
    document.content = {"weights": {"llama-aws": 0, "llama-gcp": 100}}
    with pytest.raises(ValueError, match="immutable"):
        document.save()
    assert PolicyDocument.objects.get(pk=document.pk).content == {
        "weights": {"llama-aws": 70, "llama-gcp": 30}
    }


def test_it_rejects_two_documents_with_the_same_version(gateway):
    publish(gateway, 1, {"a": 100})
    with pytest.raises(IntegrityError, match="policydocument_unique_version"), transaction.atomic():
        publish(gateway, 1, {"a": 50, "b": 50})


def test_new_versions_are_new_rows(gateway):
    publish(gateway, 1, {"a": 100})
    publish(gateway, 2, {"a": 50, "b": 50})
    assert list(gateway.documents.values_list("version", flat=True)) == [2, 1]


def test_it_rejects_an_unknown_gateway_kind():
    with pytest.raises(IntegrityError, match="gateway_kind_valid"), transaction.atomic():
        Gateway.objects.create(name="Nginx", slug="nginx", kind="nginx")


def test_it_refuses_a_bulk_update_of_a_published_document(gateway):
    document = publish(gateway, 1, {"llama-aws": 100})
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        PolicyDocument.objects.filter(pk=document.pk).update(content={"weights": {"llama-aws": 0}})
    assert PolicyDocument.objects.get(pk=document.pk).content == {"weights": {"llama-aws": 100}}
