"""The overview in a real browser: log in through the form, charts render from local plotly.js."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from decimal import Decimal

import pytest

from attribution.models import AllocatedCost, DailyCost, DailyTagCost, SpendEstimate, UnitCost
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
SCREENSHOT = "/tmp/overview2.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]


SKUS = ("ml.p5.48xlarge-hours", "a2-ultragpu-8g-hours", "nd-h100-v5-hours", "ml.g6.xlarge-hours")


def _seed_costs() -> None:
    """About two months of plausible spend: three clouds, four teams, four models, some unallocated;
    the last week of AWS allocated (its shared pool split over teams, some idle), three days after
    the last bill estimated from usage, and estimates of earlier days reconciled."""
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
                sku_id=SKUS[model_index],
            )
            if team_index is not None:
                # The tag rollup beside it: every team's spend carries env=prod, but Support's bots
                # run in staging; unallocated cost has no env tag.
                DailyTagCost.objects.create(
                    day=day,
                    account=accounts[provider],
                    billing_period_start=day.replace(day=1),
                    provider=provider,
                    service_name="AmazonSageMaker",
                    region_id="us-east-1",
                    sku_id=SKUS[model_index],
                    team=teams[team_index],
                    model=models[model_index],
                    deployment=deployments[model_index],
                    charge_category="Usage",
                    billing_currency="USD",
                    tag_key="env",
                    tag_value="staging" if team_index == 3 else "prod",
                    billed_cost=billed,
                    effective_cost=(billed * Decimal("0.92")).quantize(Decimal("0.01")),
                    line_items=40 + offset % 9,
                )
    _seed_allocation_and_estimates(latest, accounts, teams, models, deployments)


def _seed_allocation_and_estimates(latest, accounts, teams, models, deployments) -> None:
    aws = accounts["aws"]
    pool = deployments[0]
    pool.account = aws
    pool.save()
    for offset in range(7):
        day = latest - dt.timedelta(days=offset)
        # Allocation must conserve the account-day's bill: DailyCost rows of aws that day, re-cut.
        for row in DailyCost.objects.filter(account=aws, day=day):
            if row.team_id is not None:
                parts = [(row.team, row.billed_cost, "direct", "")]
            else:
                search_share = (row.billed_cost * Decimal("0.5")).quantize(Decimal("0.01"))
                ads_share = (row.billed_cost * Decimal("0.3")).quantize(Decimal("0.01"))
                idle = row.billed_cost - search_share - ads_share
                parts = [
                    (teams[0], search_share, "tokens", ""),
                    (teams[2], ads_share, "tokens", ""),
                    (None, idle, "unallocated", "idle"),
                ]
            for team, amount, method, reason in parts:
                AllocatedCost.objects.create(
                    day=day,
                    account=aws,
                    billing_period_start=day.replace(day=1),
                    provider="aws",
                    team=team,
                    model=row.model,
                    deployment=row.deployment or pool,
                    charge_category="Usage",
                    billing_currency="USD",
                    billed_cost=amount,
                    effective_cost=amount,
                    allocated_method_id=method,
                    unallocated_reason=reason,
                )
    # Estimates: three days after the last bill (open), and reconciled ones for the billed week.
    plan = [(teams[0], 0, 430), (teams[1], 1, 250), (teams[1], 2, 175), (teams[2], 3, 90), (teams[3], 1, 72)]
    for offset in range(1, 4):
        day = latest + dt.timedelta(days=offset)
        for team, model_index, base in plan:
            SpendEstimate.objects.create(
                day=day,
                deployment=deployments[model_index],
                team=team,
                model=models[model_index],
                currency="USD",
                estimated_cost=Decimal(base) * Decimal(100 + offset * 3) / 100,
                basis="unit_cost",
            )
    for offset in range(7):
        day = latest - dt.timedelta(days=offset)
        for index, (team, model_index, base) in enumerate(plan[:3]):
            estimated = Decimal(base) * Decimal(100 + (offset * 7 + index * 5) % 13 - 6) / 100
            SpendEstimate.objects.create(
                day=day,
                deployment=deployments[model_index],
                team=team,
                model=models[model_index],
                currency="USD",
                estimated_cost=estimated,
                basis="unit_cost",
                billed_cost=Decimal(base),
                error=estimated - Decimal(base),
                reconciled_at=dt.datetime(2026, 10, 21, tzinfo=dt.UTC),
            )
    for model, deployment, per_input, per_output, per_requests in (
        (models[0], deployments[0], "2.1840", "2.1840", "1.9500"),
        (models[1], deployments[1], "0.8120", "2.4360", "0.6400"),
        (models[2], deployments[2], "1.2500", "1.2500", "1.1000"),
        (models[3], deployments[3], "0.1830", "0.1830", "0.1200"),
    ):
        UnitCost.objects.create(
            day=latest,
            model=model,
            deployment=deployment,
            provider=deployment.provider,
            currency="USD",
            effective_cost=Decimal("100"),
            requests=50_000,
            input_tokens=40_000_000,
            output_tokens=8_000_000,
            cost_per_1m_input_tokens=Decimal(per_input),
            cost_per_1m_output_tokens=Decimal(per_output),
            cost_per_1k_requests=Decimal(per_requests),
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
    # Every page is served with a Content-Security-Policy; anything it blocks is a console error.
    csp_violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            csp_violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )

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
    # 4 teams, 2 unallocated reasons (idle in the allocated week, not allocated yet before it),
    # and 4 hatched estimated series.
    assert page.locator("[data-figure=by_team] .scatterlayer .trace").count() == 10
    legend = " ".join(page.locator("[data-figure=by_team] .legendtext").all_text_contents())
    assert "Unallocated — idle capacity" in legend
    assert "Unallocated — not allocated yet" in legend
    assert "Search (estimated)" in legend
    provider_legend = " ".join(page.locator("[data-figure=by_provider] .legendtext").all_text_contents())
    assert "AWS (estimated)" in provider_legend
    assert "of which estimated" in page.locator(".card--spend").inner_text()
    assert page.locator("#unallocated-by-reason tbody tr").count() == 2
    assert page.locator("#estimate-accuracy tbody tr").count() == 3
    assert page.locator("#unit-costs tbody tr").count() == 4
    assert page.locator(".role-badge").inner_text() == "Finance"
    assert page.locator(".account__name").inner_text() == "Fiona Ng"
    assert not failed_requests, f"assets failed to load: {failed_requests}"
    assert csp_violations == []
    page.screenshot(path=SCREENSHOT, full_page=True)

    # Logout is a POST form; afterwards the overview needs a login again.
    page.click(".logout-form button")
    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url
