"""Signed webhook pushes to a real HTTP receiver: the signature verifies over the raw body, a
failing receiver leaves a failed PushAttempt and the task retries; a superseded document is not
pushed."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from routing import services
from routing.adapters import PushError
from routing.models import Gateway, PolicyDocument, PushAttempt
from tests.routing.conftest import routed_deployment

pytestmark = pytest.mark.django_db
SECRET = "webhook-secret-for-tests"


class Receiver:
    def __init__(self) -> None:
        self.status = 200
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/policy"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def webhook_gateway(llama, receiver, monkeypatch):
    monkeypatch.setenv("ROUTER_WEBHOOK_SECRET", SECRET)
    gateway = Gateway.objects.create(
        name="LiteLLM",
        slug="litellm",
        kind="webhook",
        push_settings={"url": receiver.url, "secret": "env:ROUTER_WEBHOOK_SECRET"},
    )
    gateway.served_models.add(llama)
    routed_deployment(llama, "llama-aws", cost_per_1m="1.00")
    services.policies_republish(reason="cost")
    return gateway


def test_the_document_arrives_signed_over_its_raw_body(webhook_gateway, receiver):
    document = PolicyDocument.objects.get(gateway=webhook_gateway)
    attempt = services.policy_document_push(document_id=document.id)
    assert (attempt.outcome, attempt.status_code) == ("succeeded", 200)
    ((headers, body),) = receiver.received
    timestamp, signature = (part.split("=", 1)[1] for part in headers["X-Inferensys-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    assert headers["X-Inferensys-Policy-Version"] == "1"
    payload = json.loads(body)
    assert payload["content_hash"] == document.content_hash
    assert payload["policy"]["models"]["llama-70b"]["routes"][0]["weights"] == {"llama-aws": 100}


def test_a_failing_receiver_is_recorded_and_retried(webhook_gateway, receiver):
    from routing.tasks import policy_push

    receiver.status = 503
    document = PolicyDocument.objects.get(gateway=webhook_gateway)
    with pytest.raises(PushError, match="answered HTTP 503"):
        services.policy_document_push(document_id=document.id)
    failed = PushAttempt.objects.get(document=document)
    assert failed.outcome == "failed" and "HTTP 503" in failed.error
    # Run eagerly, the retries happen at once (a worker waits the growing, jittered countdown):
    # six retries after the first attempt, each recorded, then the task fails.
    result = policy_push.apply(args=[document.id])
    assert result.state == "FAILURE"
    attempts = list(
        PushAttempt.objects.filter(document=document).order_by("id").values_list("attempt", "outcome")
    )
    assert attempts == [(1, "failed")] + [(n, "failed") for n in range(1, 8)]
    receiver.status = 200
    assert policy_push.apply(args=[document.id]).get() == "succeeded"


def test_a_missing_secret_fails_the_push_without_sending(webhook_gateway, receiver, monkeypatch):
    monkeypatch.delenv("ROUTER_WEBHOOK_SECRET")
    document = PolicyDocument.objects.get(gateway=webhook_gateway)
    with pytest.raises(PushError, match="ROUTER_WEBHOOK_SECRET"):
        services.policy_document_push(document_id=document.id)
    assert receiver.received == []


def test_a_superseded_document_is_not_pushed(webhook_gateway, receiver, llama):
    first = PolicyDocument.objects.get(gateway=webhook_gateway)
    routed_deployment(llama, "llama-gcp", cost_per_1m="0.50", provider="gcp")
    services.policies_republish(reason="cost")
    assert services.policy_document_push(document_id=first.id) is None
    assert receiver.received == []
