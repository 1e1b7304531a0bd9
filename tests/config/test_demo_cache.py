"""`make demo` without Redis: the worker's warm-up of the Overview must reach the web process, so
the cache (config/settings/base.py CACHES) is shared between processes, and kept apart per database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def _in_a_process(data_dir: Path, database_name: str, code: str) -> str:
    """Run `code` in a fresh process with the demo's settings (no cache URL, no Redis broker)."""
    database = settings.DATABASES["default"]
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"INFERENSYS_CACHE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "INFERENSYS_DATA_DIR": str(data_dir),
        # Only its name is used: nothing here connects to the database.
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}/{database_name}",
    }
    script = f"import django\ndjango.setup()\nfrom django.core.cache import cache\n{code}"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_what_one_process_caches_another_reads_for_the_same_database_only(tmp_path):
    _in_a_process(tmp_path, "inferensys", "cache.set('overview:page', 'warmed by the worker', 60)")
    assert (
        _in_a_process(tmp_path, "inferensys", "print(cache.get('overview:page'))") == "warmed by the worker"
    )
    assert _in_a_process(tmp_path, "bench_pages", "print(cache.get('overview:page'))") == "None"
    assert (tmp_path / "cache").is_dir()
