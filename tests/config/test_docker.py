"""docker/ cannot be built here (no Docker engine), so check what can be checked without one:
the compose file parses and wires the services as intended, every command names a real module,
the health probe works against a real server, and .env.example lists every variable the code reads."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_has_the_five_services_and_a_one_shot_migration(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker", "beat"}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert services[name]["env_file"] == "../.env", name


def test_compose_runs_the_worker_and_beat_on_the_configured_queues(compose):
    from django.conf import settings

    worker = compose["services"]["worker"]["command"]
    assert worker[:4] == ["celery", "-A", "config", "worker"]
    queues = worker[worker.index("-Q") + 1].split(",")
    assert sorted(queues) == sorted(queue.name for queue in settings.CELERY_TASK_QUEUES)
    assert compose["services"]["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]


def test_every_service_has_a_healthcheck_or_says_why_not(compose):
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["web"]["healthcheck"]["test"] == [
        "CMD",
        "python",
        "/app/docker/healthcheck.py",
        "/readyz",
    ]
    assert "inspect ping" in " ".join(services["worker"]["healthcheck"]["test"])
    # beat and migrate serve no HTTP; the image's /healthz probe must not run there.
    assert services["beat"]["healthcheck"] == {"disable": True}
    assert services["migrate"]["healthcheck"] == {"disable": True}
    assert set(compose["volumes"]) == {"pgdata", "redisdata", "exports", "uploads"}
    # An upload is written by web and read by the worker's ingest task: both mount the same volume.
    for name in ("web", "worker"):
        assert "uploads:/data/uploads" in services[name]["volumes"]


def test_the_dockerfile_builds_a_non_root_gunicorn_image():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert re.search(r"^USER inferensys$", dockerfile, re.M)
    assert "pip install" in dockerfile and "manage.py collectstatic --noinput" in dockerfile
    assert '"gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000"' in dockerfile
    assert "HEALTHCHECK" in dockerfile and '"/app/docker/healthcheck.py", "/healthz"' in dockerfile
    assert "DJANGO_SETTINGS_MODULE=config.settings.production" in dockerfile


def test_the_entry_points_named_by_docker_import():
    # gunicorn's config.wsgi:application and celery's -A config, under the production settings.
    code = (
        "import config.wsgi, config; "
        "assert callable(config.wsgi.application); "
        "assert config.celery_app.main == 'inferensys'; "
        "from django.conf import settings; print(settings.SETTINGS_MODULE)"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "x" * 60,
        "DATABASE_URL": "postgres://u@db.example.com/inferensys",
    }
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "config.settings.production"


def test_the_dockerignore_keeps_secrets_and_local_state_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".venv", ".data", ".git"):
        assert entry in ignored
    assert "docker" not in ignored  # the health probe ships in the image


def run_probe(path: str, port: int, allowed_hosts: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PORT": str(port), "DJANGO_ALLOWED_HOSTS": allowed_hosts}
    return subprocess.run(
        [sys.executable, str(DOCKER / "healthcheck.py"), path],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_health_probe_passes_on_200_and_fails_otherwise(live_server):
    port = urlsplit(live_server.url).port
    assert run_probe("/healthz", port, "localhost,127.0.0.1").returncode == 0
    assert run_probe("/readyz", port, "localhost").returncode == 0
    missing = run_probe("/no-such-page", port, "localhost")
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr
    # The probe sends the first allowed host: one Django refuses means a failed probe.
    assert run_probe("/healthz", port, "not-allowed.example.org").returncode == 1


# Variables the code reads; .env.example must explain each one.
_ENV_READ = re.compile(
    r"""(?:env_(?:str|bool|int|list|choice|decimal)\(\s*|os\.environ\.get\(|os\.environ\[|getenv\()["']([A-Z][A-Z0-9_]+)["']"""
)


def test_env_example_lists_every_variable_the_code_reads():
    read: set[str] = set()
    for package in ("config", "attribution", "governance", "routing"):
        for path in (ROOT / package).rglob("*.py"):
            read |= set(_ENV_READ.findall(path.read_text()))
    documented = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert {"DATABASE_URL", "DJANGO_SECRET_KEY", "CELERY_BROKER_URL"} <= read
    assert read - documented == set()


def test_env_example_explains_each_variable():
    lines = (ROOT / ".env.example").read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^#?[A-Z][A-Z0-9_]+=", line):
            assert lines[index - 1].startswith("#") and len(lines[index - 1]) > 10, line
