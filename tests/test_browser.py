"""The overview in a real browser: log in through the form, charts render from local plotly.js."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from decimal import Decimal

import pytest

from tests.factories import (
    CloudAccountFactory,
    DailyCostFactory,
    DeploymentFactory,
    ServedModelFactory,
    TeamFactory,
    UserFactory,
)

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a thread
# with a running loop unless told this is safe. Set before the live server (and any ORM call) starts.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium")
SCREENSHOT = "/tmp/overview.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]


def _seed_costs() -> None:
    """About two months of plausible spend: three clouds, four teams, four models, some unallocated."""
    latest = dt.date(2026, 10, 20)
    accounts = {
        "aws": CloudAccountFactory(slug="aws-inference", name="AWS inference", provider="aws"),
        "gcp": CloudAccountFactory(slug="gcp-inference", name="GCP inference", provider="gcp"),
        "azure": CloudAccountFactory(slug="azure-inference", name="Azure inference", provider="azure"),
    }
    teams = [
        TeamFactory(slug=slug, name=name)
        for slug, name in (
            ("search", "Search"),
            ("assistant", "Assistant"),
            ("ads", "Ads ranking"),
            ("support", "Support bots"),
        )
    ]
    models = [
        ServedModelFactory(slug=slug, name=slug)
        for slug in ("llama-3.1-70b", "mistral-large", "gpt-oss-120b", "qwen2.5-7b")
    ]
    deployments = [
        DeploymentFactory(slug="llama70b-aws-use1-h100", model=models[0], provider="aws"),
        DeploymentFactory(
            slug="mistral-gcp-euw4-a100", model=models[1], provider="gcp", region="europe-west4"
        ),
        DeploymentFactory(
            slug="gptoss-azure-eastus-h100", model=models[2], provider="azure", region="eastus"
        ),
        DeploymentFactory(slug="qwen7b-aws-usw2-l4", model=models[3], provider="aws", region="us-west-2"),
    ]
    plan = [
        # provider, team index (None = unallocated), model index, base daily cost
        ("aws", 0, 0, 420),
        ("gcp", 1, 1, 260),
        ("azure", 1, 2, 180),
        ("aws", 2, 3, 95),
        ("gcp", 3, 1, 70),
        ("aws", None, 0, 60),
    ]
    for offset in range(60):
        day = latest - dt.timedelta(days=offset)
        wave = Decimal(100 + (offset * 37) % 23 - (offset % 7) * 2) / 100
        for provider, team_index, model_index, base in plan:
            billed = (Decimal(base) * wave).quantize(Decimal("0.01"))
            DailyCostFactory(
                day=day,
                account=accounts[provider],
                provider=provider,
                team=teams[team_index] if team_index is not None else None,
                model=models[model_index],
                deployment=deployments[model_index] if team_index is not None else None,
                billed_cost=billed,
                effective_cost=(billed * Decimal("0.92")).quantize(Decimal("0.01")),
                line_items=40 + offset % 9,
            )


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1440, "height": 1200})
        try:
            yield page
        finally:
            browser.close()


def test_it_logs_in_and_renders_the_charts(live_server, browser_page):
    _seed_costs()
    UserFactory(
        username="finance", first_name="Fiona", last_name="Ng", password="pw-for-tests", roles=["finance"]
    )
    page = browser_page
    failed_requests: list[str] = []
    page.on("requestfailed", lambda request: failed_requests.append(request.url))

    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url  # login required
    page.fill("input[name=username]", "finance")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert page.locator(".alert--error").is_visible()
    page.screenshot(path="/tmp/login-error.png")

    page.fill("input[name=password]", "pw-for-tests")
    page.click("button[type=submit]")
    page.wait_for_selector(".chart .main-svg")
    page.wait_for_function("document.querySelectorAll('.chart .plot-container').length >= 3")

    charts_drawn = page.locator(".chart .plot-container").count()
    assert charts_drawn >= 3
    assert page.locator(".main-svg").count() > 0
    # Bars of the provider chart and areas of the team chart exist as SVG paths.
    assert page.locator("[data-figure=by_provider] .trace.bars .point").count() > 0
    assert page.locator("[data-figure=by_team] .scatterlayer .trace").count() == 5  # 4 teams + unallocated
    legend = " ".join(page.locator("[data-figure=by_team] .legendtext").all_text_contents())
    assert "Unallocated" in legend
    assert page.locator(".role-badge").inner_text() == "Finance"
    assert page.locator(".account__name").inner_text() == "Fiona Ng"
    assert not failed_requests, f"assets failed to load: {failed_requests}"
    page.screenshot(path=SCREENSHOT, full_page=True)

    # Logout is a POST form; afterwards the overview needs a login again.
    page.click(".logout-form button")
    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url
