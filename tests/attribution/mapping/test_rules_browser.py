"""The rules page in a real browser: live preview while typing, save, re-apply progress to 100%."""

from __future__ import annotations

import os
import shutil

import pytest

from attribution.models import CostLineItem, DimensionRule
from tests.factories import UserFactory

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
CHROMIUM = shutil.which("chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
]


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1440, "height": 1200})
        try:
            yield page
        finally:
            browser.close()


@pytest.fixture
def eager_celery():
    from config.celery_app import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_it_previews_saves_and_reapplies_a_rule(
    live_server, browser_page, dims, ingest_periods, eager_celery
):
    ingest_periods()
    UserFactory(username="fiona", roles=["finance"])
    page = browser_page
    page.goto(f"{live_server.url}/login/?next=/rules/")
    page.fill("input[name=username]", "fiona")
    page.fill("input[name=password]", "pw-for-tests")
    page.click("button[type=submit]")
    page.wait_for_url("**/rules/")
    assert page.is_visible("#rules-empty")

    page.fill("input[name=name]", "ML prod is ads")
    page.select_option("select[name=match_field]", "sub_account_id")
    page.fill("input[name=value]", "ml-prod-222")
    page.select_option("select[name=set_team]", "ads")
    page.wait_for_selector(".rules-preview__summary")
    summary = page.text_content(".rules-preview__summary")
    assert "$41.00" in summary and "2 line items" in summary

    page.click("#save-button")
    page.wait_for_selector("#rules-table tbody tr")
    assert "ML prod is ads" in page.text_content("#rules-table tbody")
    page.wait_for_function("document.getElementById('reapply-message').textContent.startsWith('100%')")
    assert DimensionRule.objects.count() == 1
    assert CostLineItem.objects.filter(team__slug="ads").count() == 2

    page.click("#reapply-button")
    page.wait_for_function("document.getElementById('reapply-message').textContent.includes('Re-mapped 2')")
    page.screenshot(path="/tmp/rules-page.png", full_page=True)
