"""POST /api/v1/usage over HTTP, as a gateway sends it."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from attribution.models import UsageRecord
from governance.models import AuditEvent
from governance.services import api_token_create
from routing.services import gateway_token_revoke, gateway_token_rotate
from tests.attribution.usage.conftest import make_record
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/usage"


def post(client, body, token: str | None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(URL, data=json.dumps(body), content_type="application/json", **headers)


def test_it_accepts_a_batch_and_counts_a_replay_once(client, dims, gateway, gateway_token):
    body = {"batch_id": "b-1", "records": [make_record(0), make_record(1, team="ads", requests=4)]}
    response = post(client, body, gateway_token)
    assert response.status_code == 201, response.content
    assert response.json() == {"batch_id": "b-1", "records": 2, "duplicate": False}
    replay = post(client, body, gateway_token)
    assert replay.status_code == 200
    assert replay.json() == {"batch_id": "b-1", "records": 2, "duplicate": True}
    assert sorted(UsageRecord.objects.values_list("reporter", "requests")) == [
        ("gw-envoy-prod", 4),
        ("gw-envoy-prod", 10),
    ]
    gateway.refresh_from_db()
    assert gateway.last_seen_at is not None


def test_it_rejects_the_whole_batch_naming_record_and_field(client, dims, gateway_token):
    body = {
        "batch_id": "b-1",
        "records": [make_record(0), make_record(1, errors=99), make_record(2, team="x")],
    }
    response = post(client, body, gateway_token)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"record": 1, "field": "errors", "message": "cannot exceed requests (99 > 10)"}
    ]
    assert not UsageRecord.objects.exists()
    # Fixed, the same batch id is still free.
    body["records"] = [make_record(0)]
    assert post(client, body, gateway_token).status_code == 201


def test_it_answers_409_when_a_batch_id_is_reused_for_other_records(client, dims, gateway_token):
    post(client, {"batch_id": "b-1", "records": [make_record(0)]}, gateway_token)
    response = post(client, {"batch_id": "b-1", "records": [make_record(5)]}, gateway_token)
    assert response.status_code == 409
    assert "different records" in response.json()["detail"]


def test_it_rejects_a_malformed_body(client, dims, gateway_token):
    response = post(client, {"records": "nope"}, gateway_token)
    assert response.status_code == 400
    assert {error["field"] for error in response.json()["errors"]} == {"batch_id", "records"}


def test_it_refuses_more_than_5000_records_with_413(client, dims, gateway_token):
    body = {"batch_id": "big", "records": [make_record(0, requests=1)] * 5001}
    response = post(client, body, gateway_token)
    assert response.status_code == 413
    assert "at most 5000" in response.json()["detail"]
    assert not UsageRecord.objects.exists()


def test_it_refuses_requests_without_a_valid_gateway_token(client, dims, gateway, gateway_token):
    body = {"batch_id": "b-1", "records": [make_record(0)]}
    assert post(client, body, None).status_code == 401
    assert post(client, body, "ifs_deadbeef_not-a-real-secret").status_code == 401
    assert post(client, body, "something-else").status_code == 401
    new_token = gateway_token_rotate(gateway=gateway, actor=None)
    assert post(client, body, gateway_token).status_code == 401  # rotated away
    assert post(client, body, new_token).status_code == 201
    gateway_token_revoke(gateway=gateway, actor=None)
    assert post(client, {"batch_id": "b-2", "records": [make_record(1)]}, new_token).status_code == 401
    assert UsageRecord.objects.count() == 1


def test_a_users_api_token_cannot_post_usage(client, dims, gateway):
    admin = UserFactory(roles=["admin"])
    _, token = api_token_create(user=admin, name="script", scopes=["read", "write"])
    response = post(client, {"batch_id": "b-1", "records": [make_record(0)]}, token)
    assert response.status_code == 403
    assert "gateway token" in response.json()["detail"]
    client.force_login(admin)
    assert post(client, {"batch_id": "b-1", "records": [make_record(0)]}, None).status_code == 401
    assert not UsageRecord.objects.exists()


def test_the_number_of_queries_does_not_grow_with_the_records(client, dims, gateway_token):
    def queries_for(batch_id: str, count: int) -> int:
        records = [
            make_record(minute % 600, team=("search", "ads")[minute // 600]) for minute in range(count)
        ]
        with CaptureQueriesContext(connection) as captured:
            response = post(client, {"batch_id": batch_id, "records": records}, gateway_token)
        assert response.status_code == 201
        return len(captured.captured_queries)

    queries_for("warm-up", 1)  # the gateway's last_seen_at is written at most every 10 s
    small = queries_for("small", 3)
    large = queries_for("large", 1200)
    assert large == small
    assert small <= 14
    assert UsageRecord.objects.count() == 1200


def test_gateway_token_command_prints_the_token_once_and_audits(dims, gateway, capsys, client):
    call_command("gateway_token", "gw-envoy-prod")
    token = capsys.readouterr().out.strip()
    assert token.startswith("ifs_")
    gateway.refresh_from_db()
    assert gateway.token_hash and token not in gateway.token_hash
    event = AuditEvent.objects.get(action="rotate_token", object_id=str(gateway.pk))
    assert event.changes["token_prefix"][1] == gateway.token_prefix
    assert token not in json.dumps(event.changes)
    assert post(client, {"batch_id": "b-1", "records": [make_record(0)]}, token).status_code == 201


def test_the_openapi_schema_documents_the_usage_post_with_an_example():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/usage"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert examples
    assert {"201", "200", "400", "401", "403", "409", "413"} <= set(operation["responses"])
    assert {"gatewayToken": []} in operation["security"]
