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


@pytest.fixture
def assert_page_queries_flat(django_assert_max_num_queries):
    """Check that a page's query count does not grow with its rows (no N+1), within a ceiling.

    `grow()` adds rows the page lists (at least twice as many as there were) and returns texts the
    bigger page must show, so the check cannot pass on rows the page never reads. The page is asked
    once to warm per-process caches (content types, ...), then counted at the small size, then,
    after `grow()`, asserted with `django_assert_max_num_queries` at the small count: one query per
    row would fail it. The small count itself must stay within `ceiling`.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def check(client, url: str, *, grow, ceiling: int):
        assert client.get(url).status_code == 200
        with CaptureQueriesContext(connection) as small:
            assert client.get(url).status_code == 200
        count = len(small.captured_queries)
        assert count <= ceiling, f"{url}: {count} queries, over the ceiling of {ceiling}"
        expected = grow()
        with django_assert_max_num_queries(count):
            response = client.get(url)
        assert response.status_code == 200
        body = response.content.decode()
        missing = [text for text in expected if text not in body]
        assert not missing, f"{url} does not show the added rows: {missing}"
        return response

    return check


@pytest.fixture
def page_figures_checked_and_unchecked(settings):
    """A page's figures (its `json_script` blob) built with Plotly's checks on, as in tests, and off,
    as when serving (settings.PLOTLY_VALIDATE): callers assert the two are equal and not empty."""
    import json
    import re

    def get(client, url: str, script_id: str = "figures") -> tuple[dict, dict]:
        blobs = []
        for validate in (True, False):
            settings.PLOTLY_VALIDATE = validate
            response = client.get(url)
            assert response.status_code == 200
            found = re.search(
                rf'<script id="{script_id}" type="application/json">(.*?)</script>',
                response.content.decode(),
                re.S,
            )
            assert found, f"{url} has no {script_id} script"
            blobs.append(json.loads(found.group(1)))
        settings.PLOTLY_VALIDATE = True
        return blobs[0], blobs[1]

    return get
