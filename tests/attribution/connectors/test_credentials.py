"""Credentials: references, Fernet encryption with the key from the environment, and secrets that
never show in logs, reprs, the audit log, the API, the admin or the UI."""

from __future__ import annotations

import io
import json
import logging

import boto3
import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from attribution.connectors.credentials import (
    KEY_VARIABLE,
    Credentials,
    CredentialsError,
    account_credentials,
    cloud_account_credentials_set,
)
from attribution.connectors.services import account_sync
from attribution.models import CloudAccount, RunState, SyncErrorKind
from governance.models import AuditEvent
from tests.attribution.connectors.conftest import DEMO_BUCKET, moto_auth_enable, upload_tree
from tests.factories import CloudAccountFactory, UserFactory

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"


@pytest.fixture
def credentials_key(monkeypatch) -> str:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv(KEY_VARIABLE, key)
    return key


def test_it_stores_a_credential_encrypted_and_reads_it_back(db, credentials_key):
    account = CloudAccountFactory(provider="aws")

    keys = cloud_account_credentials_set(
        account_id=account.pk, values={"access_key_id": "AKIAEXAMPLE", "secret_access_key": SECRET}
    )

    account.refresh_from_db()
    assert keys == ["access_key_id", "secret_access_key"]
    assert (
        SECRET not in account.credentials_ciphertext and "AKIAEXAMPLE" not in account.credentials_ciphertext
    )
    resolved = account_credentials(account)
    assert resolved.source == "encrypted" and resolved.get("secret_access_key") == SECRET
    assert SECRET not in repr(resolved) and SECRET not in str(resolved)
    assert repr(resolved) == "<Credentials source=encrypted keys=['access_key_id', 'secret_access_key']>"


def test_it_names_the_missing_key_variable(db, monkeypatch):
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    account = CloudAccountFactory(provider="aws")

    with pytest.raises(CredentialsError, match=KEY_VARIABLE):
        cloud_account_credentials_set(account_id=account.pk, values={"secret_access_key": SECRET})
    account.refresh_from_db()
    assert account.credentials_ciphertext == ""


def test_it_rejects_a_credential_encrypted_under_another_key(db, credentials_key, monkeypatch):
    account = CloudAccountFactory(provider="aws")
    cloud_account_credentials_set(account_id=account.pk, values={"secret_access_key": SECRET})
    monkeypatch.setenv(KEY_VARIABLE, Fernet.generate_key().decode())
    account.refresh_from_db()

    with pytest.raises(CredentialsError, match="cannot be decrypted") as caught:
        account_credentials(account)
    assert SECRET not in str(caught.value)


def test_it_resolves_env_and_file_references(db, monkeypatch, tmp_path):
    monkeypatch.setenv("ACME_KEY_ID", "AKIAFROMENV")
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    account = CloudAccountFactory(
        provider="aws",
        source_settings={
            "credentials": {"access_key_id": "env:ACME_KEY_ID", "secret_access_key": f"file:{secret_file}"}
        },
    )
    resolved = account_credentials(account)
    assert (resolved.get("access_key_id"), resolved.get("secret_access_key")) == ("AKIAFROMENV", SECRET)

    monkeypatch.setenv(
        "ACME_AWS_JSON", json.dumps({"access_key_id": "AKIAJSON", "secret_access_key": SECRET})
    )
    account.source_settings = {"credentials": "env:ACME_AWS_JSON"}
    assert account_credentials(account).get("access_key_id") == "AKIAJSON"

    account.source_settings = {"credentials": "env:NOT_SET_ANYWHERE"}
    with pytest.raises(CredentialsError, match="NOT_SET_ANYWHERE"):
        account_credentials(account)
    assert account_credentials(CloudAccountFactory(provider="aws", source_settings={})).is_ambient


def test_set_credentials_encrypts_audits_key_names_and_never_echoes_the_secret(
    db, credentials_key, monkeypatch
):
    account = CloudAccountFactory(provider="aws", slug="aws-prod")
    monkeypatch.setenv(
        "NEW_AWS_CREDENTIAL", json.dumps({"access_key_id": "AKIAX", "secret_access_key": SECRET})
    )
    out, err = io.StringIO(), io.StringIO()

    call_command("set_credentials", "aws-prod", from_env="NEW_AWS_CREDENTIAL", stdout=out, stderr=err)

    account.refresh_from_db()
    assert account_credentials(account).get("secret_access_key") == SECRET
    assert SECRET not in out.getvalue() + err.getvalue()
    event = AuditEvent.objects.get(action="credentials_set")
    assert event.object_id == str(account.pk)
    assert event.changes == {
        "before": {"credentials": "unset"},
        "after": {"credentials": "encrypted (access_key_id, secret_access_key)"},
    }
    assert SECRET not in json.dumps(event.changes) and account.credentials_ciphertext not in json.dumps(
        event.changes
    )

    monkeypatch.setattr("sys.stdin", io.StringIO(f"secret_access_key={SECRET}"))
    with pytest.raises(CommandError) as caught:
        call_command("set_credentials", "aws-prod", stdin=True, stdout=out, stderr=err)
    assert "JSON object" in str(caught.value) and SECRET not in str(caught.value)

    call_command("set_credentials", "aws-prod", clear=True, stdout=out)
    account.refresh_from_db()
    assert account.credentials_ciphertext == ""
    assert AuditEvent.objects.filter(action="credentials_cleared").count() == 1


def test_a_sync_with_an_encrypted_credential_shows_the_secret_nowhere(
    moto, demo_cur2, demo_company, credentials_key, caplog, client
):
    out, _ = demo_cur2
    upload_tree(out / "aws" / DEMO_BUCKET, bucket=DEMO_BUCKET)
    moto_auth_enable(moto, unauthenticated_actions=3)
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName="sync")
    key = iam.create_access_key(UserName="sync")["AccessKey"]
    iam.put_user_policy(
        UserName="sync",
        PolicyName="read-exports",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{DEMO_BUCKET}"},
                    {
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{DEMO_BUCKET}/cur2/*",
                    },
                ],
            }
        ),
    )
    secret = key["SecretAccessKey"]
    cloud_account_credentials_set(
        account_id=demo_company.pk, values={"access_key_id": key["AccessKeyId"], "secret_access_key": secret}
    )
    demo_company.refresh_from_db()
    ciphertext = demo_company.credentials_ciphertext

    with caplog.at_level(logging.DEBUG):
        run = account_sync(account_id=demo_company.pk, inline_ingest=True)

    assert run.state == RunState.SUCCEEDED, run.error
    assert secret not in caplog.text
    assert secret not in json.dumps(run.details) + run.error
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    client.force_login(admin)
    pages = [
        client.get(f"/api/v1/accounts/{demo_company.pk}"),
        client.get("/api/v1/accounts"),
        client.get("/api/v1/sync-runs"),
        client.get(f"/admin/attribution/cloudaccount/{demo_company.pk}/change/"),
        client.get("/admin/attribution/syncrun/"),
    ]
    for page in pages:
        assert page.status_code == 200, page
        body = page.content.decode()
        assert secret not in body and ciphertext not in body
        assert "credentials_ciphertext" not in body


def test_a_credential_key_error_fails_the_sync_with_a_clear_reason(
    moto, demo_company, monkeypatch, credentials_key
):
    cloud_account_credentials_set(account_id=demo_company.pk, values={"secret_access_key": SECRET})
    monkeypatch.delenv(KEY_VARIABLE)

    run = account_sync(account_id=demo_company.pk, inline_ingest=True)

    assert run.state == RunState.FAILED and run.error_kind == SyncErrorKind.AUTHENTICATION
    assert KEY_VARIABLE in run.error
    assert CloudAccount.objects.get(pk=demo_company.pk).last_synced_at is None


def test_credentials_repr_without_values():
    assert repr(Credentials()) == "<Credentials source=ambient keys=[]>"
