"""Cloud credentials: resolved at the moment a connector needs them, never stored in clear.

An account names its credential in one of four ways (the first that applies wins):

1. `CloudAccount.credentials_ciphertext`: a JSON object encrypted with Fernet under the key in the
   environment variable INFERENSYS_CREDENTIALS_KEY (set with `manage.py set_credentials`).
2. `source_settings["credentials"] == "ambient"` (or absent): the provider SDK's own chain
   (instance role, workload identity, managed identity, the SDK's environment variables).
3. `source_settings["credentials"] == "env:NAME"` or `"file:/path"`: the variable or file holds a
   JSON object with the provider's keys (for AWS: access_key_id, secret_access_key, session_token).
4. `source_settings["credentials"]` is an object whose values are references, e.g.
   `{"access_key_id": "env:ACME_AWS_KEY_ID", "secret_access_key": "file:/run/secrets/aws"}`.

Resolved secrets travel in `Credentials`, whose repr and str show only the key names, so a
traceback, a log line or a debugger print never shows a secret.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.db import transaction

from attribution.audit import audited_change_send
from attribution.models import CloudAccount, SyncErrorKind

KEY_VARIABLE = "INFERENSYS_CREDENTIALS_KEY"
AMBIENT = "ambient"


class CredentialsError(Exception):
    """A credential that cannot be resolved: the message names what to fix, never the secret."""

    error_kind = SyncErrorKind.AUTHENTICATION


class Credentials:
    """Resolved secret values. Ambient when `values` is empty."""

    __slots__ = ("_values", "source")

    def __init__(self, values: Mapping[str, str] | None = None, *, source: str = AMBIENT) -> None:
        self._values = dict(values or {})
        self.source = source  # "ambient", "env:NAME", "file:/path", "references" or "encrypted"

    @property
    def is_ambient(self) -> bool:
        return not self._values

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._values.get(key, default)

    def keys(self) -> list[str]:
        return sorted(self._values)

    def __repr__(self) -> str:
        return f"<Credentials source={self.source} keys={self.keys()}>"

    __str__ = __repr__


def _fernet() -> Fernet:
    key = os.environ.get(KEY_VARIABLE, "").strip()
    if not key:
        raise CredentialsError(
            f"{KEY_VARIABLE} is not set: it holds the key that encrypts stored cloud credentials. "
            "Generate one with `python -c 'from cryptography.fernet import Fernet; "
            f"print(Fernet.generate_key().decode())'` and set {KEY_VARIABLE} for the web app and workers."
        )
    try:
        return Fernet(key.encode())
    except ValueError:
        raise CredentialsError(
            f"{KEY_VARIABLE} is not a valid Fernet key (32 url-safe base64-encoded bytes)."
        ) from None


def credentials_encrypt(*, values: Mapping[str, str]) -> str:
    return _fernet().encrypt(json.dumps(dict(values), sort_keys=True).encode()).decode()


def credentials_decrypt(*, ciphertext: str) -> dict[str, str]:
    try:
        plain = _fernet().decrypt(ciphertext.encode())
    except InvalidToken:
        raise CredentialsError(
            f"the stored credential cannot be decrypted with the current {KEY_VARIABLE} (the key was "
            "changed or the value is damaged); store it again with `manage.py set_credentials`."
        ) from None
    return _as_string_map(json.loads(plain), origin="the stored credential")


def _as_string_map(value: Any, *, origin: str) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise CredentialsError(f"{origin} must be a non-empty JSON object of strings.")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise CredentialsError(f"{origin} must be a JSON object whose values are strings.")
    return dict(value)


def reference_resolve(reference: str) -> str:
    """The text an `env:NAME` or `file:/path` reference points at (stripped)."""
    if reference.startswith("env:"):
        name = reference[4:]
        value = os.environ.get(name)
        if value is None or not value.strip():
            raise CredentialsError(f"environment variable {name} (credential reference) is not set.")
        return value.strip()
    if reference.startswith("file:"):
        path = Path(reference[5:])
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise CredentialsError(f"credential file {path} cannot be read ({error.strerror}).") from None
    raise CredentialsError(
        f"credential reference {reference[:20]!r}... is not 'ambient', 'env:NAME' or 'file:/path'."
    )


def account_credentials(account: CloudAccount) -> Credentials:
    """Resolve the credential of an account (see the module docstring for the order)."""
    if account.credentials_ciphertext:
        return Credentials(credentials_decrypt(ciphertext=account.credentials_ciphertext), source="encrypted")
    setting = (account.source_settings or {}).get("credentials", AMBIENT)
    if setting in (AMBIENT, "", None):
        return Credentials(source=AMBIENT)
    if isinstance(setting, str):
        text = reference_resolve(setting)
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            raise CredentialsError(
                f"the credential referenced by {setting.split(':')[0]}:... is not a JSON object "
                '(expected e.g. {"access_key_id": "...", "secret_access_key": "..."}).'
            ) from None
        return Credentials(_as_string_map(parsed, origin=f"the credential in {setting}"), source=setting)
    if isinstance(setting, dict):
        values = {}
        for key, reference in setting.items():
            if not isinstance(reference, str):
                raise CredentialsError(f"credentials.{key} must be a reference string such as 'env:NAME'.")
            values[key] = reference_resolve(reference)
        return Credentials(values, source="references")
    raise CredentialsError("source_settings.credentials must be 'ambient', a reference, or an object.")


def cloud_account_credentials_set(
    *,
    account_id: int,
    values: Mapping[str, str] | None,
    actor: Any = None,
    remote_addr: str | None = None,
) -> list[str]:
    """Encrypt and store (or, with None, clear) an account's credential, audited in the same
    transaction with the key names only. Returns the key names; the values are never returned,
    logged or echoed."""
    if values is not None:
        values = _as_string_map(dict(values), origin="the credential")
        ciphertext = credentials_encrypt(values=values)
        # Decrypt once before storing: a key that cannot read back what it wrote is caught here.
        credentials_decrypt(ciphertext=ciphertext)
    else:
        ciphertext = ""
    keys = sorted(values) if values is not None else []
    with transaction.atomic():
        account = CloudAccount.objects.select_for_update().filter(pk=account_id).first()
        if account is None:
            raise CredentialsError(f"cloud account {account_id} does not exist.")
        had_one = bool(account.credentials_ciphertext)
        account.credentials_ciphertext = ciphertext
        account.save(update_fields=["credentials_ciphertext"])
        audited_change_send(
            actor=actor,
            action="credentials_cleared" if values is None else "credentials_set",
            obj=account,
            changes={
                "before": {"credentials": "set" if had_one else "unset"},
                "after": {"credentials": f"encrypted ({', '.join(keys)})" if keys else "unset"},
            },
            remote_addr=remote_addr,
        )
    return keys
