"""API tokens: created and revoked through services, audited, stored only as an HMAC."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import ApiToken, AuditEvent
from governance.services import api_token_create, api_token_revoke
from governance.tokens import hash_token
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def bearer(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def alice():
    return UserFactory(username="alice")


def test_a_valid_token_authenticates_its_user(alice):
    token, plaintext = api_token_create(user=alice, name="ci", scopes=["read"])
    response = bearer(plaintext).get("/api/v1/me")
    assert response.status_code == 200, response.content
    assert response.json()["username"] == "alice"
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_the_plaintext_is_nowhere_in_the_token_table(alice):
    token, plaintext = api_token_create(user=alice, name="ci", scopes=["read"])
    secret_part = plaintext.split("_", 2)[2]
    with connection.cursor() as cursor:
        cursor.execute("SELECT t::text FROM governance_apitoken AS t")
        rows = [text for (text,) in cursor.fetchall()]
        cursor.execute("SELECT e::text FROM governance_auditevent AS e")
        audit_rows = [text for (text,) in cursor.fetchall()]
    assert len(rows) == 1
    assert plaintext not in rows[0]
    assert secret_part not in rows[0]
    assert token.token_hash == hash_token(plaintext) and token.token_hash in rows[0]
    assert token.prefix in rows[0]  # the readable prefix is what identifies a leaked token
    assert audit_rows and not any(secret_part in row or token.token_hash in row for row in audit_rows)


def test_it_rejects_a_revoked_token(alice):
    token, plaintext = api_token_create(user=alice, name="ci", scopes=["read"])
    api_token_revoke(token=token)
    response = bearer(plaintext).get("/api/v1/me")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_it_rejects_an_expired_token(alice):
    _, plaintext = api_token_create(
        user=alice, name="ci", scopes=["read"], expires_at=timezone.now() + dt.timedelta(hours=1)
    )
    assert bearer(plaintext).get("/api/v1/me").status_code == 200
    with time_machine.travel(timezone.now() + dt.timedelta(hours=2)):
        response = bearer(plaintext).get("/api/v1/me")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_it_rejects_an_unknown_token(alice):
    api_token_create(user=alice, name="ci", scopes=["read"])
    response = bearer("ifs_deadbeef_this-token-was-never-issued").get("/api/v1/me")
    assert response.status_code == 401


def test_it_rejects_a_token_whose_user_was_deactivated(alice):
    _, plaintext = api_token_create(user=alice, name="ci", scopes=["read"])
    alice.is_active = False
    alice.save()
    assert bearer(plaintext).get("/api/v1/me").status_code == 401


def test_it_rejects_requests_without_credentials_with_401():
    response = APIClient().get("/api/v1/me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_token_without_the_read_scope_cannot_read(alice):
    _, plaintext = api_token_create(user=alice, name="budget-bot", scopes=["write:budgets"])
    response = bearer(plaintext).get("/api/v1/budgets")
    assert response.status_code == 403
    assert "read" in response.json()["detail"]


def test_creating_and_revoking_are_audited_as_credential_changes(alice):
    admin = UserFactory(username="root", roles=["admin"])
    token, _ = api_token_create(
        user=alice, name="ci", scopes=["read", "read"], actor=admin, remote_addr="10.0.0.7"
    )
    api_token_revoke(token=token, actor=admin)
    api_token_revoke(token=token, actor=admin)  # already revoked: no second event

    created, revoked = AuditEvent.objects.order_by("id")
    assert (created.action, created.actor, created.actor_label) == ("create", admin, "root")
    assert (created.object_type, created.object_id) == ("governance.apitoken", str(token.pk))
    assert created.remote_addr == "10.0.0.7"
    assert created.changes == {
        "user": "alice",
        "name": "ci",
        "prefix": token.prefix,
        "scopes": ["read"],
        "expires_at": None,
    }
    assert revoked.action == "revoke" and revoked.object_id == str(token.pk)
    assert AuditEvent.objects.count() == 2


def test_it_rejects_a_duplicate_token_name_for_the_same_user(alice):
    api_token_create(user=alice, name="ci", scopes=["read"])
    with pytest.raises(ValidationError, match="already has a token named 'ci'"):
        api_token_create(user=alice, name="ci", scopes=["read"])
    assert ApiToken.objects.count() == 1
    # Another user may use the same name.
    api_token_create(user=UserFactory(username="bob"), name="ci", scopes=["read"])


@pytest.mark.parametrize("scopes", [[], ["READ"], ["read all"], ["write:"]])
def test_it_rejects_malformed_scopes(alice, scopes):
    with pytest.raises(ValidationError):
        api_token_create(user=alice, name="ci", scopes=scopes)
    assert not ApiToken.objects.exists() and not AuditEvent.objects.exists()


def test_it_rejects_an_expiry_in_the_past(alice):
    with pytest.raises(ValidationError, match="future"):
        api_token_create(
            user=alice, name="ci", scopes=["read"], expires_at=timezone.now() - dt.timedelta(seconds=1)
        )


def test_the_command_prints_the_plaintext_once(alice):
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_token", "alice", "--name", "finance-bi", "--scope", "read", stdout=out, stderr=err
    )
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    plaintext = lines[0]
    assert plaintext.startswith("ifs_")
    assert plaintext not in err.getvalue()
    assert "cannot be shown again" in err.getvalue()
    token = ApiToken.objects.get(user=alice, name="finance-bi")
    assert token.scopes == ["read"] and token.token_hash == hash_token(plaintext)
    assert bearer(plaintext).get("/api/v1/me").json()["username"] == "alice"


def test_the_command_sets_an_expiry_and_defaults_to_read(alice):
    call_command(
        "create_api_token",
        "alice",
        "--name",
        "tmp",
        "--expires-in-days",
        "7",
        stdout=StringIO(),
        stderr=StringIO(),
    )
    token = ApiToken.objects.get(name="tmp")
    assert token.scopes == ["read"]
    assert dt.timedelta(days=6, hours=23) < token.expires_at - timezone.now() <= dt.timedelta(days=7)


def test_the_command_names_an_unknown_user():
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("create_api_token", "nobody", "--name", "ci", stdout=StringIO(), stderr=StringIO())
