"""Azurite (the npm package) as a real Blob storage for azure-storage-blob.

Installed into the repo's data folder, never globally:

    npm install --prefix .data/node azurite@3

The fixture starts `azurite-blob` on a free loopback port with in-memory persistence and fails
(never skips) when the package is missing, naming the install command.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AZURITE_BIN = REPO / ".data" / "node" / "node_modules" / ".bin" / "azurite-blob"
INSTALL = "npm install --prefix .data/node azurite@3"
ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class Azurite:
    def __init__(self, process: subprocess.Popen, port: int) -> None:
        self.process = process
        self.port = port

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{ACCOUNT};"
        )


@pytest.fixture(scope="session")
def azurite() -> Azurite:
    if not AZURITE_BIN.exists():
        pytest.fail(f"Azurite is not installed at {AZURITE_BIN}; run: {INSTALL}")
    process = subprocess.Popen(
        [
            str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence",
            "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    port = None
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline and port is None:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        match = re.search(r"successfully listen\w* (?:on|at) http://127\.0\.0\.1:(\d+)", line)
        if match:
            port = int(match.group(1))
    if port is None:
        process.kill()
        pytest.fail("Azurite did not start:\n" + "".join(seen[-20:]))
    yield Azurite(process, port)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
