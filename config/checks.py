"""Deploy-time problems as Django system checks with stable ids (`manage.py check --deploy`)."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register()
def check_reporting_currency(app_configs, **kwargs):
    if not re.fullmatch(r"[A-Z]{3}", settings.REPORTING_CURRENCY or ""):
        return [
            Error(
                f"INFERENSYS_REPORTING_CURRENCY={settings.REPORTING_CURRENCY!r} is not an ISO 4217 code.",
                hint="Use a three-letter upper-case code such as USD or EUR.",
                id="inferensys.E001",
            )
        ]
    return []


@register(Tags.database, deploy=True)
def check_database_is_external(app_configs, **kwargs):
    host = str(settings.DATABASES["default"].get("HOST", ""))
    if host.startswith("/") and host.startswith(str(settings.DATA_DIR)):
        return [
            Warning(
                "DATABASE_URL is unset: the embedded Postgres under the data folder is for demos.",
                hint="Set DATABASE_URL to a managed or dedicated Postgres server.",
                id="inferensys.W001",
            )
        ]
    return []


@register(deploy=True)
def check_broker_is_shared(app_configs, **kwargs):
    if str(settings.CELERY_BROKER_URL).startswith("filesystem://"):
        return [
            Warning(
                "CELERY_BROKER_URL is unset: the filesystem broker only works when web, worker and beat "
                "share one machine and one disk.",
                hint="Set CELERY_BROKER_URL to a Redis URL such as redis://redis:6379/0.",
                id="inferensys.W002",
            )
        ]
    return []


@register(deploy=True)
def check_static_files_collected(app_configs, **kwargs):
    """With the manifest storage every page that names a static file fails (500) until
    collectstatic has run with these settings; say so before serving, not after."""
    backend = settings.STORAGES.get("staticfiles", {}).get("BACKEND", "")
    if "Manifest" not in backend:
        return []
    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if manifest.is_file():
        return []
    return [
        Error(
            f"Static files are not collected: {manifest} is missing, so every page would answer 500.",
            hint="Run `make static` (manage.py collectstatic with these settings) before starting the web "
            "server; the Docker image does it at build time.",
            id="inferensys.E002",
        )
    ]
