"""Opening source files: gzip by magic bytes, UTF-8 with or without BOM, byte progress, checksums."""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"
_HASH_BLOCK = 1 << 20


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def is_gzip(path: str | Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


class CountingReader(io.RawIOBase):
    """Wraps the raw file: counts bytes read (progress) and hashes them (the file did not change
    between planning and loading)."""

    def __init__(self, raw: io.BufferedReader) -> None:
        self._raw = raw
        self.bytes_read = 0
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        count = len(data)
        buffer[:count] = data
        self.bytes_read += count
        self.sha256.update(data)
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()


@contextmanager
def open_text(path: str | Path) -> Iterator[tuple[io.TextIOWrapper, CountingReader]]:
    """Text stream over a plain or gzipped file. `utf-8-sig` drops a BOM when there is one."""
    counter = CountingReader(open(path, "rb"))  # noqa: SIM115 - closed below
    binary: io.BufferedIOBase = io.BufferedReader(counter, buffer_size=1 << 20)
    try:
        if is_gzip(path):
            binary = gzip.GzipFile(fileobj=binary, mode="rb")  # type: ignore[assignment]
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        yield text, counter
    finally:
        binary.close()
        counter.close()


def read_head(path: str | Path, size: int = 64 * 1024) -> str:
    """The first characters of a file (decompressed), for format detection."""
    with open_text(path) as (text, _counter):
        return text.read(size)
