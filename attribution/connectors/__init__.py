"""Cloud connectors: one billing and one usage connector per provider, looked up by the account's provider.

Connectors are named by import path and imported on first use, so a provider whose SDK or module is
missing fails only for its own accounts, with a clear message, and importing this package stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from django.utils.module_loading import import_string

from attribution.connectors.base import BillingConnector, ConnectorError, UsageConnector
from attribution.models import CloudAccount, SyncErrorKind

BILLING_CONNECTORS: dict[str, str] = {
    "aws": "attribution.connectors.aws.AwsBillingConnector",
    "gcp": "attribution.connectors.gcp.GcpBillingConnector",
    "azure": "attribution.connectors.azure.AzureBillingConnector",
}
USAGE_CONNECTORS: dict[str, str] = {
    "aws": "attribution.connectors.aws.AwsUsageConnector",
    "gcp": "attribution.connectors.gcp.GcpUsageConnector",
    "azure": "attribution.connectors.azure.AzureUsageConnector",
}


def _connector_class(
    registry: dict[str, str], provider: str, what: str, *, missing_ok: bool = False
) -> type | None:
    path = registry.get(provider)
    if path is None:
        return None
    try:
        return import_string(path)
    except ImportError as error:
        module = path.rsplit(".", 1)[0]
        not_written_yet = isinstance(error, ModuleNotFoundError) and error.name == module
        if missing_ok and (not_written_yet or "does not define" in str(error)):
            return None
        raise ConnectorError(
            f"the {what} connector for {provider} ({path}) cannot be loaded: {error}",
            error_kind=SyncErrorKind.INVALID,
        ) from None


def billing_connector_for(account: CloudAccount) -> BillingConnector:
    connector_class = _connector_class(BILLING_CONNECTORS, account.provider, "billing")
    if connector_class is None:
        raise ConnectorError(
            f"no billing connector for provider {account.provider!r}; ingest its exports with ingest_exports",
            error_kind=SyncErrorKind.INVALID,
        )
    return connector_class(account)


def remote_opener(account: CloudAccount) -> Callable[[str, str, bool], IO[bytes]]:
    """Opens stored remote sources of this account's ingest runs (uri, version, seekable) through
    its billing connector, created once: what attribution.services passes to the ingest pipeline,
    which knows no connector."""
    connector = billing_connector_for(account)

    def remote_open(uri: str, version: str, seekable: bool = False) -> IO[bytes]:
        return connector.open_uri(uri, version, seekable=seekable)

    return remote_open


def remote_open(*, account: CloudAccount, uri: str, version: str, seekable: bool = False) -> IO[bytes]:
    """One remote source of an ingest run, at the version the run was planned with."""
    return remote_opener(account)(uri, version, seekable)


def usage_connector_for(account: CloudAccount) -> UsageConnector | None:
    """The usage connector of the account's provider, or None when the provider has none."""
    connector_class = _connector_class(USAGE_CONNECTORS, account.provider, "usage", missing_ok=True)
    return connector_class(account) if connector_class is not None else None


__all__ = [
    "BILLING_CONNECTORS",
    "USAGE_CONNECTORS",
    "BillingConnector",
    "ConnectorError",
    "UsageConnector",
    "billing_connector_for",
    "remote_open",
    "remote_opener",
    "usage_connector_for",
]
