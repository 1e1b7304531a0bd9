"""The OpenAPI schema generates cleanly, and Swagger UI works offline from our own static files."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.core.management import call_command
from django.test import Client, override_settings

from governance.services import api_token_create
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]


def test_the_schema_generates_without_warnings(tmp_path):
    schema_file = tmp_path / "schema.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(schema_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    schema = yaml.safe_load(schema_file.read_text())
    paths = set(schema["paths"])
    for endpoint in (
        "accounts",
        "teams",
        "models",
        "deployments",
        "ingest-runs",
        "daily-costs",
        "daily-costs/summary",
        "me",
        "budgets",
        "audit-events",
        "gateways",
        "policy-documents",
    ):
        assert f"/api/v1/{endpoint}" in paths
    assert "apiToken" in schema["components"]["securitySchemes"]
    # A gateway credential must never appear in any published shape.
    assert "token_hash" not in schema_file.read_text()


@pytest.mark.django_db
def test_the_schema_endpoint_serves_openapi(client):
    client.force_login(UserFactory(username="viewer", roles=["viewer"]))
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


@pytest.mark.django_db
def test_the_schema_and_docs_are_for_signed_in_callers_and_tokens(client):
    assert client.get("/api/schema/").status_code == 401
    docs = client.get("/api/docs/")
    assert docs.status_code == 302 and docs["Location"].startswith("/login/")
    _, plaintext = api_token_create(user=UserFactory(username="bi"), name="bi", scopes=["read"])
    response = client.get(
        "/api/schema/",
        HTTP_AUTHORIZATION=f"Bearer {plaintext}",
        HTTP_ACCEPT="application/vnd.oai.openapi+json",
    )
    assert response.status_code == 200 and "/api/v1/teams" in response.json()["paths"]


@pytest.mark.django_db
def test_swagger_ui_loads_only_local_assets_and_they_are_served(client, tmp_path):
    client.force_login(UserFactory(username="viewer", roles=["viewer"]))
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()

    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    urls += re.findall(r"""url:\s*["']([^"']+)["']""", html)
    assert urls, html
    # Nothing from a CDN or any other host: every reference is a path on this server.
    assert [url for url in urls if urlsplit(url).scheme or urlsplit(url).netloc] == []
    assert "cdn" not in html.lower()

    scripts = [url for url in urls if url.endswith(".js")]
    assert any("swagger-ui-bundle" in url for url in scripts), scripts
    assert all(url.startswith("/static/") for url in scripts), scripts

    # Serve the assets the way production does: collectstatic, then WhiteNoise from STATIC_ROOT.
    static_root = tmp_path / "static"
    with override_settings(STATIC_ROOT=static_root):
        call_command("collectstatic", "--noinput", verbosity=0)
        fresh_client = Client()  # builds its middleware (and WhiteNoise's file index) now
        for url in [url for url in urls if url.startswith("/static/")]:
            asset = fresh_client.get(url)
            assert asset.status_code == 200, url
            body = b"".join(asset.streaming_content) if asset.streaming else asset.content
            assert len(body) > 500, url
