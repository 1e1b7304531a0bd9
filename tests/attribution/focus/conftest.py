"""Fixtures shared by the FOCUS tests."""

from __future__ import annotations

import shutil

import pytest
from django.core.management import call_command


@pytest.fixture
def demo_cloud(tmp_path):
    """One cloud's demo exports (4 days to 2026-11-28), ingested through the production path."""

    def ingest_cloud(cloud: str) -> str:
        call_command("demo_seed", verbosity=0)
        call_command("demo_exports", days=4, out=str(tmp_path), seed=7, end_date="2026-11-28", verbosity=0)
        for other in {"aws", "gcp", "azure"} - {cloud}:
            shutil.rmtree(tmp_path / other, ignore_errors=True)
        call_command("ingest_exports", str(tmp_path), verbosity=0)
        return f"{cloud}-prod"

    return ingest_cloud
