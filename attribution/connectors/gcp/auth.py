"""Google Cloud credentials (service-account key by reference, or the ambient chain) and the
mapping of Google API errors to connector errors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from attribution.connectors.base import (
    ConnectorError,
)
from attribution.models import SyncErrorKind

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


# --- credentials ---------------------------------------------------------------------------------


def _reference_text(reference: str, *, what: str) -> str:
    if reference.startswith("env:"):
        name = reference[4:]
        value = os.environ.get(name)
        if not value:
            raise ConnectorError(
                f"{what}: environment variable {name} is not set", error_kind=SyncErrorKind.AUTHENTICATION
            )
        return value
    if reference.startswith("file:"):
        path = Path(reference[5:])
        try:
            return path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConnectorError(
                f"{what}: cannot read {path} ({error.strerror})", error_kind=SyncErrorKind.AUTHENTICATION
            )
    raise ConnectorError(
        f"{what}: {reference!r} is not 'ambient', 'env:NAME' or 'file:/path'",
        error_kind=SyncErrorKind.INVALID,
    )


def gcp_credentials(settings: dict[str, Any]):
    """google-auth credentials from the account's reference; the secret never leaves memory."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError
    from google.oauth2 import credentials as oauth_credentials
    from google.oauth2 import service_account

    reference = str(settings.get("credentials") or "ambient")
    if reference == "ambient":
        try:
            credentials, _project = google.auth.default(scopes=SCOPES)
        except DefaultCredentialsError:
            raise ConnectorError(
                "no ambient Google credentials: set GOOGLE_APPLICATION_CREDENTIALS, use workload identity, "
                "or give a 'file:' or 'env:' credential reference",
                error_kind=SyncErrorKind.AUTHENTICATION,
            )
        return credentials
    text = _reference_text(reference, what="Google credentials").strip()
    if not text.startswith("{"):
        # A bare OAuth access token (e.g. from `gcloud auth print-access-token`): short-lived.
        return oauth_credentials.Credentials(token=text)
    try:
        info = json.loads(text)
        if info.get("type") == "service_account":
            return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        if info.get("type") == "authorized_user":
            return oauth_credentials.Credentials.from_authorized_user_info(info, scopes=SCOPES)
    except (ValueError, KeyError) as error:
        raise ConnectorError(
            f"Google credentials: the key JSON is not usable ({type(error).__name__})",
            error_kind=SyncErrorKind.AUTHENTICATION,
        )
    raise ConnectorError(
        "Google credentials: JSON of type service_account or authorized_user expected",
        error_kind=SyncErrorKind.AUTHENTICATION,
    )


def gcp_error(error: Exception, *, doing: str) -> ConnectorError:
    """Classify a google-api-core / google-auth / transport error for the sync."""
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth
    from requests import exceptions as http

    if isinstance(error, ConnectorError):
        return error
    message = getattr(error, "message", None) or str(error)
    if isinstance(error, api.Unauthorized | auth.RefreshError | auth.DefaultCredentialsError):
        return ConnectorError(
            f"{doing}: authentication failed ({message})", error_kind=SyncErrorKind.AUTHENTICATION
        )
    if isinstance(error, api.Forbidden):
        return ConnectorError(f"{doing}: permission denied ({message})", error_kind=SyncErrorKind.PERMISSION)
    if isinstance(error, api.NotFound):
        return ConnectorError(f"{doing}: not found ({message})", error_kind=SyncErrorKind.NOT_FOUND)
    if isinstance(
        error,
        api.TooManyRequests
        | api.ServiceUnavailable
        | api.InternalServerError
        | api.GatewayTimeout
        | api.BadGateway,
    ) or isinstance(error, http.ConnectionError | http.Timeout):
        return ConnectorError(f"{doing}: {message}", error_kind=SyncErrorKind.TRANSIENT, transient=True)
    if isinstance(error, api.BadRequest):
        return ConnectorError(f"{doing}: {message}", error_kind=SyncErrorKind.INVALID)
    return ConnectorError(f"{doing}: {type(error).__name__}: {message}", error_kind=SyncErrorKind.INVALID)
