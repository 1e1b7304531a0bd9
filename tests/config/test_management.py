"""Migrations match the models, and the production settings pass Django's deploy checks."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = StringIO()
    # --check exits non-zero (SystemExit) when a migration would be created.
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    assert "No changes detected" in out.getvalue()


def _production_check(*command: str, **overrides: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "INFERENSYS_", "CELERY_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DATABASE_URL="postgres://inferensys@db.example.com:5432/inferensys",
        DJANGO_ALLOWED_HOSTS="example.com",
        CELERY_BROKER_URL="redis://redis.example.com:6379/0",
    )
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *(command or ("check", "--deploy", "--fail-level", "WARNING"))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_checks(tmp_path):
    # As the image is built: static files collected with these settings first (inferensys.E002 otherwise).
    collected = _production_check("collectstatic", "--noinput", INFERENSYS_DATA_DIR=str(tmp_path))
    assert collected.returncode == 0, collected.stderr
    result = _production_check(INFERENSYS_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_deploy_check_flags_the_filesystem_broker():
    result = _production_check(CELERY_BROKER_URL="")
    assert result.returncode != 0
    assert "inferensys.W002" in result.stderr


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.production", DATABASE_URL="postgres://x@db/x")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr
