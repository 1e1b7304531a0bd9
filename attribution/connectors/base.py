"""The contract every cloud connector implements.

A billing connector discovers, per billing period, the files the provider delivered
(`PeriodDelivery`), each a `RemoteFile` that can be opened as a stream; the sync service decides
which periods changed and hands their files to the ingest pipeline, which streams them (nothing is
copied to disk) and, in the worker, re-opens them by uri and version (`open_uri`). A usage
connector reads usage metrics into the same record shape the gateways post. Connectors never write
to the database.
"""

from __future__ import annotations

import datetime as dt
import io
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar

from attribution.models import CloudAccount, SyncErrorKind


class ConnectorError(Exception):
    """A failure talking to the provider, classified so the sync knows whether to retry.

    `error_kind` is a SyncErrorKind value; `transient` errors (throttling, 5xx, timeouts) are retried
    with backoff, the others stop the sync and are shown with their reason."""

    def __init__(
        self, message: str, *, error_kind: str, transient: bool = False, retry_after: float | None = None
    ):
        super().__init__(message)
        self.error_kind = error_kind
        self.transient = transient
        self.retry_after = retry_after


@dataclass(frozen=True)
class RemoteFile:
    """One delivered file. `open()` returns a binary stream read front to back in chunks; it must
    not load the whole object into memory."""

    name: str  # e.g. s3://bucket/key, azure://container/blob, bigquery://project.dataset.table?month=202610
    version: str  # ETag, blob etag, or another marker that changes when the content changes
    open: Callable[[], IO[bytes]]
    size: int | None = None
    dataset: str = ""  # Azure: "actual" or "amortized"
    # A seekable stream of the same version (ranged reads), for Parquet footers; None when the
    # provider cannot (the ingest then copies a Parquet file to an anonymous temporary file).
    open_seekable: Callable[[], IO[bytes]] | None = None


@dataclass
class PeriodDelivery:
    billing_period_start: dt.date  # first day of the month
    # Changes whenever the provider delivers a new version of the period (AWS execution id, hash of
    # object ETags, GCP max export_time, Azure export run id).
    source_version: str
    is_final: bool
    files: list[RemoteFile]
    source_format: str = "auto"
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConnectionCheck:
    name: str  # e.g. "credentials", "s3:ListBucket on acme-billing", "export manifest present"
    ok: bool
    detail: str = ""


@dataclass
class ConnectionReport:
    checks: list[ConnectionCheck]
    error_kind: str = SyncErrorKind.NONE

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def message(self) -> str:
        failing = [check for check in self.checks if not check.ok]
        if not failing:
            return "Connection OK: " + "; ".join(check.name for check in self.checks)
        return "; ".join(f"{check.name}: {check.detail}" for check in failing)


class BillingConnector(ABC):
    provider: ClassVar[str]

    def __init__(self, account: CloudAccount) -> None:
        self.account = account
        self.settings: dict[str, Any] = dict(account.source_settings or {})

    @abstractmethod
    def test_connection(self) -> ConnectionReport:
        """Check credentials, permissions and that the export exists; never raises ConnectorError."""

    @abstractmethod
    def discover(self) -> list[PeriodDelivery]:
        """The periods available at the source (at least the current and previous month), newest first."""

    def open_uri(self, uri: str, version: str, *, seekable: bool = False) -> IO[bytes]:
        """A stream of exactly `version` of the RemoteFile named `uri` (as `RemoteFile.open` gave
        it at discovery): the ingest, running later in a worker, re-opens its sources with it.
        Raises ConnectorError; one that is not transient when that version is gone."""
        raise ConnectorError(
            f"the {self.provider} connector cannot re-open {uri}", error_kind=SyncErrorKind.INVALID
        )


class UsageConnector(ABC):
    provider: ClassVar[str]

    def __init__(self, account: CloudAccount) -> None:
        self.account = account
        self.settings: dict[str, Any] = dict(account.source_settings or {})

    @abstractmethod
    def fetch_usage(self, *, start: dt.datetime, end: dt.datetime) -> Iterator[dict[str, Any]]:
        """Usage records in the gateway record shape (see attribution.usage.services), with
        `bucket_start` aligned to `bucket_seconds`, deployments named by slug."""


class ChunkStream(io.RawIOBase):
    """A binary stream over an iterator of byte chunks (an SDK's download chunks, serialised query
    pages): the reader pulls, nothing is buffered beyond the chunk being read."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close:
            close()
        super().close()
