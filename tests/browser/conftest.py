from __future__ import annotations

import os

import pytest

from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS, PageCheck, missing_requirements

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a thread
# with a running loop unless told this is safe. Set before the live server (and any ORM call) starts.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(items):
    reason = missing_requirements()
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def chromium():
    """One browser per module (starting Chromium costs about a second); a fresh context per test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_tab(chromium, live_server):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    try:
        yield PageCheck(page=context.new_page(), base_url=live_server.url)
    finally:
        context.close()
