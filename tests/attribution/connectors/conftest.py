"""Fixtures for the connector tests: a real moto server (S3, STS, IAM, CloudWatch over HTTP) and the
demo company's CUR 2.0 exports, generated once per session and uploaded per test."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from django.core.management import call_command

from attribution.demo.aws_cur2 import cur2_write
from attribution.demo.company import company_build
from attribution.demo.expected import ExpectedTotals
from attribution.demo.specs import DemoRange

ROOT = Path(__file__).resolve().parents[3]
MOTO_SERVER = ROOT / ".venv" / "bin" / "moto_server"
# Two billing periods: September 2026 closed (delivered twice: an early execution, then the final
# one with the invoice id) and October 2026 month to date.
DEMO_END = dt.date(2026, 10, 5)
DEMO_DAYS = 10
DEMO_BUCKET = "acme-billing-exports"
EXPORT_ROOT = "cur2/acme-cur2-daily"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post(url: str, body: bytes = b"") -> None:
    # text/plain: moto reads reset-auth's count from the raw body, which a form content type hides.
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).read()


@pytest.fixture(scope="session")
def moto_server_url(tmp_path_factory) -> str:
    """A moto server process on a free loopback port, for the whole session."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    process = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).read()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"moto_server did not start on port {port}")
            time.sleep(0.1)
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture
def moto(moto_server_url, monkeypatch, settings, tmp_path) -> str:
    """A clean moto state; every boto3 client of the process (and of a worker started with this
    environment) talks to it. Spools go to the test's own DATA_DIR."""
    _post(f"{moto_server_url}/moto-api/reset")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    settings.DATA_DIR = tmp_path / "data"
    yield moto_server_url
    # Tests that turn IAM authentication on must never leave it on for the next one.
    _post(f"{moto_server_url}/moto-api/reset-auth", b"inf")


def moto_auth_enable(moto_url: str, *, unauthenticated_actions: int = 0) -> None:
    """From now on moto checks signatures and IAM policies, after `unauthenticated_actions` free calls."""
    _post(f"{moto_url}/moto-api/reset-auth", str(unauthenticated_actions).encode())


@pytest.fixture(scope="session")
def demo_cur2(tmp_path_factory) -> tuple[Path, dict]:
    """The demo company's AWS exports (only AWS, to stay fast) and their expected totals."""
    out = tmp_path_factory.mktemp("demo-exports")
    demo_range = DemoRange.ending(end=DEMO_END, days=DEMO_DAYS)
    totals = ExpectedTotals(generator={"seed": 42, "days": DEMO_DAYS, "end_date": DEMO_END.isoformat()})
    cur2_write(company=company_build(seed=42), demo_range=demo_range, out_dir=out, totals=totals)
    totals.write(out / "expected_totals.json")
    return out, json.loads((out / "expected_totals.json").read_text())


def expected_entry(expected: dict, *, period: str, version: str = "current") -> dict:
    return next(
        entry
        for entry in expected["entries"]
        if entry["provider"] == "aws" and entry["billing_period"] == period and entry["version"] == version
    )


def s3_client():
    return boto3.client("s3", region_name="us-east-1", endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def upload_tree(root: Path, *, bucket: str, skip: tuple[str, ...] = ()) -> int:
    """Upload every file under root to the bucket (created if needed), keys relative to root."""
    client = s3_client()
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)
    count = 0
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        if path.is_file() and not any(part in key for part in skip):
            client.upload_file(str(path), bucket, key)
            count += 1
    return count


@pytest.fixture
def demo_company(db):
    """Accounts, teams, models and deployments of the demo company in the database."""
    call_command("demo_seed", stdout=io.StringIO())
    from attribution.models import CloudAccount

    return CloudAccount.objects.get(slug="aws-prod")
