"""Where the bytes of an export come from: a local file or a remote object, read as a stream.

A `Source` is what the pipeline plans and loads from:

- `LocalSource(path)`: a file on disk (the `ingest_file` command). Its checksum is the sha256 of
  its bytes; the loader hashes what it reads and compares, so a file that changes while it is read
  fails the run.
- `RemoteSource`: an object at a provider (an S3 object, a blob, the rows of a BigQuery query),
  opened as a binary stream read front to back in chunks: nothing is copied to disk and the whole
  object is never in memory. Its checksum is its provider version (`etag:<ETag>`, a blob's etag,
  BigQuery's max export_time): every open asks the provider for exactly that version (S3 `IfMatch`,
  Azure `if_match`, BigQuery `export_time <= version`), so the bytes read are the planned ones
  without re-hashing them.

Runs execute later, in a worker: a run stores one entry per source (`Source.entry()`), and
`source_from_entry` rebuilds the source from it. A remote entry is `{"uri", "version", ...}`; the
caller passes a `RemoteOpener` that opens a uri at a version (the connectors provide it; this
package does not know them).

Parquet needs a seekable file (its footer is at the end). `open_seekable()` asks the opener for a
seekable stream (S3: ranged GETs pinned to the ETag); an opener that cannot seek gets its stream
copied to an anonymous temporary file that the OS deletes on close. That copy is the only spooling
left, and only for remote Parquet of a provider without range reads.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from attribution.ingest.errors import IngestError

GZIP_MAGIC = b"\x1f\x8b"
_HASH_BLOCK = 1 << 20
_COPY_BLOCK = 1 << 20

# (uri, version, seekable) -> binary stream of exactly that version of the object.
RemoteOpener = Callable[[str, str, bool], IO[bytes]]


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


class Source:
    """One input of a run. Subclasses: LocalSource, RemoteSource."""

    name: str  # shown in errors and RejectedRow.file_path: a path or a uri
    dataset: str = ""  # Azure: "actual" or "amortized" when the delivery says so
    is_local: bool = False

    @property
    def size(self) -> int | None:
        raise NotImplementedError

    @property
    def checksum(self) -> str:
        raise NotImplementedError

    def open_binary(self) -> IO[bytes]:
        raise NotImplementedError

    def open_seekable(self) -> IO[bytes]:
        raise NotImplementedError

    def hashes_reads(self) -> bool:
        """Whether the bytes read must be hashed to know the source did not change."""
        return False

    def unchanged(self, counter: Any, *, reread: bool = False) -> bool:
        """After a full read: were the bytes read those of the planned version?"""
        return True

    def entry(self) -> dict[str, Any]:
        """What a run stores to rebuild this source (see source_from_entry)."""
        raise NotImplementedError


class LocalSource(Source):
    is_local = True

    def __init__(self, path: str | Path, *, checksum: str = "", dataset: str = "") -> None:
        self.path = Path(path)
        self.name = str(path)
        self.dataset = dataset
        self._checksum = checksum

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    @property
    def checksum(self) -> str:
        if not self._checksum:
            self._checksum = file_sha256(self.path)
        return self._checksum

    def open_binary(self) -> IO[bytes]:
        return open(self.path, "rb")  # noqa: SIM115 - the caller closes it

    def open_seekable(self) -> IO[bytes]:
        return open(self.path, "rb")  # noqa: SIM115 - the caller closes it

    def hashes_reads(self) -> bool:
        return True

    def unchanged(self, counter: Any, *, reread: bool = False) -> bool:
        # The batch path reads ahead in large blocks, so a change after the last block was read
        # would escape the streaming checksum: `reread` hashes the file once more (cheap next to
        # parsing).
        read = counter.sha256.hexdigest()
        return read == self.checksum and (not reread or file_sha256(self.path) == self.checksum)

    def entry(self) -> dict[str, Any]:
        return {
            "path": str(self.path.resolve()),
            "sha256": self.checksum,
            "checksum": self.checksum,
            "bytes": self.size,
        }


class RemoteSource(Source):
    """An object at a provider, streamed. `opener(seekable)` returns a binary stream of exactly
    `version` (see the module docstring)."""

    def __init__(
        self,
        *,
        uri: str,
        version: str,
        opener: Callable[[bool], IO[bytes]],
        size: int | None = None,
        dataset: str = "",
    ) -> None:
        self.uri = uri
        self.name = uri
        self.version = version
        self.dataset = dataset
        self._opener = opener
        self._size = size

    @classmethod
    def from_remote_file(cls, remote: Any) -> RemoteSource:
        """Adapter for a connector's RemoteFile (name, version, open(), size, dataset and, when the
        provider can read ranges, open_seekable())."""
        seekable_open = getattr(remote, "open_seekable", None)

        def opener(seekable: bool) -> IO[bytes]:
            if seekable and seekable_open is not None:
                return seekable_open()
            return remote.open()

        return cls(
            uri=remote.name,
            version=remote.version,
            opener=opener,
            size=remote.size,
            dataset=remote.dataset or "",
        )

    @property
    def size(self) -> int | None:
        return self._size

    @property
    def checksum(self) -> str:
        return f"etag:{self.version}"

    def _open(self, seekable: bool) -> IO[bytes]:
        try:
            return self._opener(seekable)
        except IngestError:
            raise
        except Exception as error:
            if getattr(error, "transient", False):
                raise  # throttling, 5xx: the caller may retry
            # The version is gone (a new delivery replaced it), access was revoked...: a failed run.
            raise IngestError(f"cannot read the object ({error})", path=self.name) from error

    def open_binary(self) -> IO[bytes]:
        return self._open(False)

    def open_seekable(self) -> IO[bytes]:
        stream = self._open(True)
        if stream.seekable():
            return stream
        # Parquet fallback only: an anonymous temporary file (unlinked by the OS when closed).
        spooled = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
        try:
            shutil.copyfileobj(stream, spooled, _COPY_BLOCK)
        except BaseException:
            spooled.close()
            raise
        finally:
            stream.close()
        spooled.seek(0)
        return spooled

    def entry(self) -> dict[str, Any]:
        return {
            "path": self.name,
            "uri": self.uri,
            "version": self.version,
            "checksum": self.checksum,
            "bytes": self.size or 0,
        }


def source_from_entry(entry: dict[str, Any], *, remote_open: RemoteOpener | None = None) -> Source:
    """The source a run's `source_files` entry describes."""
    if entry.get("uri"):
        if remote_open is None:
            raise IngestError("no opener for remote sources was given", path=entry["path"])
        uri, version = entry["uri"], entry["version"]
        return RemoteSource(
            uri=uri,
            version=version,
            opener=lambda seekable: remote_open(uri, version, seekable),
            size=entry.get("bytes") or None,
            dataset=entry.get("dataset", ""),
        )
    return LocalSource(entry["path"], checksum=entry.get("sha256", ""), dataset=entry.get("dataset", ""))


SourceLike = Source | str | Path


def as_source(source: SourceLike) -> Source:
    return source if isinstance(source, Source) else LocalSource(source)


def is_gzip(source: SourceLike) -> bool:
    return magic_bytes(source, 2) == GZIP_MAGIC


def magic_bytes(source: SourceLike, count: int = 4) -> bytes:
    """The first bytes of the (raw, still compressed) stream."""
    stream = as_source(source).open_binary()
    try:
        data = b""
        while len(data) < count:
            block = stream.read(count - len(data))
            if not block:
                break
            data += block
        return data
    finally:
        stream.close()


class CountingReader(io.RawIOBase):
    """Wraps the raw stream: counts bytes read (progress) and, for a local file, hashes them (the
    file did not change between planning and loading)."""

    def __init__(self, raw: IO[bytes], *, hashing: bool = True) -> None:
        self._raw = raw
        self.bytes_read = 0
        self.sha256 = hashlib.sha256()
        self._hashing = hashing

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        count = len(data)
        buffer[:count] = data
        self.bytes_read += count
        if self._hashing:
            self.sha256.update(data)
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()


@contextmanager
def open_decompressed(source: SourceLike) -> Iterator[tuple[IO[bytes], CountingReader]]:
    """The bytes of a plain or gzipped source (gzip recognised by its magic bytes) from one stream."""
    source = as_source(source)
    counter = CountingReader(source.open_binary(), hashing=source.hashes_reads())
    binary: io.BufferedIOBase = io.BufferedReader(counter, buffer_size=1 << 20)
    try:
        if binary.peek(2)[:2] == GZIP_MAGIC:
            binary = gzip.GzipFile(fileobj=binary, mode="rb")  # type: ignore[assignment]
        yield binary, counter
    finally:
        binary.close()
        counter.close()


@contextmanager
def open_text(source: SourceLike) -> Iterator[tuple[io.TextIOWrapper, CountingReader]]:
    """Text stream over a plain or gzipped source. `utf-8-sig` drops a BOM when there is one."""
    with open_decompressed(source) as (binary, counter):
        yield io.TextIOWrapper(binary, encoding="utf-8-sig", newline=""), counter


def read_head(source: SourceLike, size: int = 64 * 1024) -> str:
    """The first characters of a source (decompressed), for format detection."""
    with open_text(source) as (text, _counter):
        return text.read(size)
