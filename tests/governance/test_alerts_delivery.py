"""Alert deliveries against a real loopback HTTP receiver: the signed webhook verifies with the
documented check (a tampered body or an old timestamp is refused), Slack gets its text payload,
email goes through Django's backend, failures retry with growing backoff and are logged;
acknowledging and test-sending over the API, with permissions."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from django.core import mail
from rest_framework.test import APIClient

from governance.alert_services import alert_delivery_send, backoff_seconds
from governance.models import Alert, AlertDelivery, AuditEvent, NotificationChannel
from governance.services import alert_raise
from governance.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, webhook_signature_verify
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
SECRET = "s3cret-for-tests-only"


class Receiver:
    """A real HTTP server on 127.0.0.1 that verifies signatures the way the README tells receivers to."""

    def __init__(self, *, fail_first: int = 0):
        self.received: list[dict] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                signature = self.headers.get(SIGNATURE_HEADER)
                valid = signature is not None and webhook_signature_verify(
                    secret=SECRET,
                    timestamp=self.headers.get(TIMESTAMP_HEADER),
                    body=body,
                    signature=signature,
                )
                receiver.received.append({"headers": dict(self.headers), "body": body, "valid": valid})
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    status = 503
                elif signature is not None and not valid:
                    status = 401
                else:
                    status = 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def secret_env(monkeypatch):
    monkeypatch.setenv("ALERT_HOOK_SECRET", SECRET)


def _post(url: str, body: bytes, headers: dict) -> int:
    try:
        with urlopen(Request(url, data=body, method="POST", headers=headers), timeout=5) as response:
            return response.status
    except HTTPError as error:
        return error.code


def test_a_signed_webhook_verifies_and_a_tampered_or_replayed_one_is_refused(receiver, secret_env):
    team = TeamFactory(slug="search")
    NotificationChannel.objects.create(
        name="hook", kind="webhook", target=receiver.url, secret_reference="env:ALERT_HOOK_SECRET", team=team
    )
    alert, _ = alert_raise(kind="anomaly", severity="warning", dedup_key="a1", message="Spike", team=team)
    delivery = AlertDelivery.objects.get(alert=alert)
    assert alert_delivery_send(delivery_id=delivery.pk).state == "sent"
    [got] = receiver.received
    assert got["valid"] is True
    assert json.loads(got["body"])["message"] == "Spike"
    assert got["headers"][SIGNATURE_HEADER].startswith("v1=")
    assert SECRET not in json.dumps(got["headers"]) + got["body"].decode()

    headers = {key: got["headers"][key] for key in (TIMESTAMP_HEADER, SIGNATURE_HEADER)}
    tampered = got["body"].replace(b"Spike", b"Calm!")
    assert _post(receiver.url, tampered, headers) == 401
    assert receiver.received[-1]["valid"] is False
    # The same body and signature replayed after the window is refused too.
    old = str(int(headers[TIMESTAMP_HEADER]) - 3600)
    assert not webhook_signature_verify(
        secret=SECRET, timestamp=old, body=got["body"], signature=headers[SIGNATURE_HEADER]
    )
    assert not webhook_signature_verify(
        secret=SECRET, timestamp=headers[TIMESTAMP_HEADER], body=got["body"],
        signature=headers[SIGNATURE_HEADER], now=time.time() + 600,
    )  # fmt: skip


def test_failures_retry_with_growing_backoff_and_every_attempt_is_logged(secret_env):
    server = Receiver(fail_first=2)
    try:
        NotificationChannel.objects.create(
            name="hook", kind="webhook", target=server.url, secret_reference="env:ALERT_HOOK_SECRET"
        )
        alert, _ = alert_raise(kind="anomaly", severity="warning", dedup_key="a2", message="Spike")
        delivery = AlertDelivery.objects.get(alert=alert)
        first = alert_delivery_send(delivery_id=delivery.pk)
        second = alert_delivery_send(delivery_id=delivery.pk)
        third = alert_delivery_send(delivery_id=delivery.pk)
    finally:
        server.close()
    assert (first.state, first.retry_in) == ("pending", backoff_seconds(1))
    assert (second.state, second.retry_in) == ("pending", backoff_seconds(2))
    assert second.retry_in > first.retry_in
    assert (third.state, third.retry_in) == ("sent", None)
    delivery.refresh_from_db()
    assert [entry["status"] for entry in delivery.log] == [503, 503, 200]
    assert delivery.attempts == 3 and "HTTP 503" in delivery.log[0]["error"]
    # A sent delivery is not sent again by a redelivered task.
    assert alert_delivery_send(delivery_id=delivery.pk).state == "sent"
    assert len(server.received) == 3


def test_an_unreachable_webhook_fails_after_the_last_attempt(settings, secret_env):
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 2
    NotificationChannel.objects.create(
        name="dead", kind="slack", target="http://127.0.0.1:9/nothing-listens-here"
    )
    alert, _ = alert_raise(kind="anomaly", severity="warning", dedup_key="a3", message="Spike")
    delivery = AlertDelivery.objects.get(alert=alert)
    assert alert_delivery_send(delivery_id=delivery.pk).state == "pending"
    assert alert_delivery_send(delivery_id=delivery.pk).state == "failed"
    delivery.refresh_from_db()
    assert "unreachable" in delivery.last_error


def test_slack_and_email_channels_and_team_subscriptions(receiver):
    search, ads = TeamFactory(slug="search"), TeamFactory(slug="ads")
    NotificationChannel.objects.create(name="slack", kind="slack", target=receiver.url, team=search)
    NotificationChannel.objects.create(
        name="mail", kind="email", target="oncall@example.com", kinds=["anomaly"]
    )
    NotificationChannel.objects.create(name="ads slack", kind="slack", target=receiver.url, team=ads)
    alert, _ = alert_raise(
        kind="anomaly", severity="warning", dedup_key="a4", message="Spike in search", team=search
    )
    deliveries = {delivery.channel.name: delivery for delivery in AlertDelivery.objects.filter(alert=alert)}
    assert set(deliveries) == {"slack", "mail"}  # not the other team's channel
    for delivery in deliveries.values():
        assert alert_delivery_send(delivery_id=delivery.pk).state == "sent"
    assert json.loads(receiver.received[0]["body"])["text"].endswith("Spike in search")
    assert [(message.to, message.body) for message in mail.outbox] == [
        (["oncall@example.com"], "Spike in search")
    ]
    # The mail channel subscribes to anomalies only.
    other, _ = alert_raise(
        kind="budget_threshold", severity="warning", dedup_key="a5", message="80 %", team=search
    )
    assert [delivery.channel.name for delivery in AlertDelivery.objects.filter(alert=other)] == ["slack"]


def test_ack_and_test_send_over_the_api_with_permissions(receiver):
    search = TeamFactory(slug="search")
    lead, viewer, other_lead = (
        UserFactory(username="lead", roles=["team_lead"]),
        UserFactory(username="viewer", roles=["viewer"]),
        UserFactory(username="other", roles=["team_lead"]),
    )
    MembershipFactory(user=lead, team=search, role="lead")
    MembershipFactory(user=viewer, team=search, role="member")
    MembershipFactory(user=other_lead, team=TeamFactory(slug="ads"), role="lead")
    alert = Alert.objects.create(kind="anomaly", team=search, message="Spike", dedup_key="a6")
    channel = NotificationChannel.objects.create(name="slack", kind="slack", target=receiver.url, team=search)

    def client_for(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    assert client_for(other_lead).post(f"/api/v1/alerts/{alert.pk}/ack").status_code == 404
    assert client_for(viewer).post(f"/api/v1/alerts/{alert.pk}/ack").status_code == 403
    response = client_for(lead).post(f"/api/v1/alerts/{alert.pk}/ack")
    assert response.status_code == 200 and response.json()["acknowledged_by"] == "lead"
    assert client_for(lead).post(f"/api/v1/alerts/{alert.pk}/ack").status_code == 200
    assert AuditEvent.objects.filter(action="acknowledge", object_id=str(alert.pk)).count() == 1
    listing = client_for(viewer).get("/api/v1/alerts?state=acknowledged&team=search").json()
    assert [row["id"] for row in listing["results"]] == [alert.pk]
    assert client_for(viewer).get("/api/v1/alerts?state=open").json()["results"] == []

    assert client_for(viewer).post(f"/api/v1/channels/{channel.pk}/test").status_code == 403
    sent = client_for(lead).post(f"/api/v1/channels/{channel.pk}/test")
    assert sent.status_code == 200 and sent.json()["state"] == "sent"
    assert "Test message" in json.loads(receiver.received[-1]["body"])["text"]


def test_channels_take_secret_references_only(receiver):
    admin = UserFactory(username="admin", roles=["admin"])
    client = APIClient()
    client.force_authenticate(admin)
    body = {"name": "hook", "kind": "webhook", "target": receiver.url, "secret_reference": "hunter2"}
    response = client.post("/api/v1/channels", body, format="json")
    assert response.status_code == 400 and "reference" in response.json()["secret_reference"][0]
    assert not NotificationChannel.objects.exists()
    response = client.post("/api/v1/channels", {**body, "secret_reference": "env:HOOK_SECRET"}, format="json")
    assert response.status_code == 201
    assert AuditEvent.objects.filter(object_type="governance.notificationchannel", action="create").exists()
