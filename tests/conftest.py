from __future__ import annotations

import os
from pathlib import Path

import pytest

# A worktree that does not sit beside shared/ points INFERENSYS_SHARED_DATA at it.
SHARED_DATA = Path(
    os.environ.get("INFERENSYS_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)


@pytest.fixture
def shared_billing_data() -> Path:
    """The real public billing samples in ../shared/data/billing (read in place, never copied)."""
    path = SHARED_DATA / "billing"
    if not path.is_dir():
        pytest.fail(f"Shared billing samples not found at {path}; CI lays shared/ beside the clone.")
    return path
