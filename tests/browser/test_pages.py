"""Every page of the navigation, as each role, in a real browser: it renders (charts drawn), logs no
console error, has no serious or critical axe-core violation, and links only what the role may open.
Screenshots of each page at 1280 and 2560 px are written as test artifacts (as the admin, who sees all)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from attribution.models import CloudAccount, IngestRun, RejectedRow
from governance.models import BudgetThreshold
from tests.attribution.views.test_browser import _seed_costs
from tests.factories import BudgetFactory, MembershipFactory, TeamFactory, UserFactory

# Pages that are not ours to fix (third-party UIs): linked, but not audited.
NOT_AUDITED = {"API docs", "Django admin"}


@pytest.fixture
def people(db):
    search = TeamFactory(slug="search")
    ads = TeamFactory(slug="ads")
    users = {
        "superuser": UserFactory(username="root", is_superuser=True, is_staff=True),
        "admin": UserFactory(username="admin1", roles=["admin"]),
        "finance": UserFactory(username="finance1", roles=["finance"]),
        "team_lead": UserFactory(username="lead1", roles=["team_lead"]),
        "viewer": UserFactory(username="viewer1", roles=["viewer"]),
    }
    MembershipFactory(user=users["team_lead"], team=search, role="lead")
    MembershipFactory(user=users["viewer"], team=search, role="member")
    search_budget = BudgetFactory(team=search, name="Search monthly", amount=Decimal("9000"))
    BudgetThreshold.objects.create(budget=search_budget, percent=Decimal("100"), action="notify")
    ads_budget = BudgetFactory(team=ads, name="Ads monthly", amount=Decimal("4000"))
    return {"users": users, "search_budget": search_budget, "ads_budget": ads_budget}


@pytest.fixture
def world(people):
    _seed_costs()
    _seed_ingest_runs()
    return people


def _seed_ingest_runs() -> None:
    """The Ingestion page with what makes its table wide: a restated period, a failed run whose error
    names a long path, rejected rows from a long object key (every page must fit 1280 px)."""
    aws = CloudAccount.objects.get(slug="aws-inference")
    gcp = CloudAccount.objects.get(slug="gcp-inference")
    october = {"billing_period_start": dt.date(2026, 10, 1), "billing_period_end": dt.date(2026, 11, 1)}
    started = dt.datetime(2026, 10, 21, 6, 0, tzinfo=dt.UTC)
    old = IngestRun.objects.create(
        account=aws, state="superseded", source_format="aws-cur2", rows_in_source=18_400, rows_loaded=18_400,
        started_at=started - dt.timedelta(days=1), **october,
    )  # fmt: skip
    new = IngestRun.objects.create(
        account=aws, state="succeeded", source_format="aws-cur2", rows_in_source=19_964, rows_loaded=19_961,
        rows_rejected=3, rows_processed=19_961, bytes_total=31_000_000, bytes_processed=31_000_000,
        source_sums={"billed_cost": "1234567.89", "rejected_billed_cost": "12.00"},
        database_sums={"billed_cost": "1234555.8900000000"},
        started_at=started, finished_at=started + dt.timedelta(seconds=23), **october,
    )  # fmt: skip
    old.superseded_by = new
    old.save()
    RejectedRow.objects.create(
        ingest_run=new,
        file_path="s3://acme-billing/cur2/inferensys/data/BILLING_PERIOD=2026-10/inferensys-00001.snappy.parquet",
        line_number=7,
        raw_text="arn:aws:sagemaker:us-east-1:123456789012:endpoint/llama-3-1-70b-search-canary," * 4,
        reason="BilledCost is not a number: 'n/a'",
    )
    IngestRun.objects.create(
        account=gcp, state="failed", source_format="gcp-bigquery", bytes_total=862, started_at=started,
        error="/var/lib/inferensys/exports/problems/gcp-inference-2026-10.csv.gz:2: file is truncated or "
        "corrupt (Compressed file ended before the end-of-stream marker was reached)",
        **october,
    )  # fmt: skip


def _nav_links(tab) -> dict[str, str]:
    links = tab.page.locator(".sidenav a")
    return {links.nth(i).inner_text(): links.nth(i).get_attribute("href") for i in range(links.count())}


# role: (sees the audit log, sees the Django admin)
ROLES = {
    "superuser": (True, True),
    "admin": (True, False),
    "finance": (True, False),
    "team_lead": (False, False),
    "viewer": (False, False),
}


def _check_pages_as(tab, role: str, username: str) -> list[str]:
    sees_audit, sees_admin = ROLES[role]
    tab.login(username)
    links = _nav_links(tab)
    failures = []
    if ("Audit log" in links) is not sees_audit:
        failures.append(f"audit log linked: {'Audit log' in links}, expected {sees_audit}")
    if ("Django admin" in links) is not sees_admin:
        failures.append(f"admin linked: {'Django admin' in links}, expected {sees_admin}")
    for label, path in links.items():
        if label in NOT_AUDITED:
            continue
        status = tab.visit(path)
        if status != 200:
            failures.append(f"{label} ({path}): HTTP {status}")
            continue
        html = tab.page.content()
        # Nothing a role may not open is in the HTML of any page, not just absent from the menu.
        if not sees_audit and "/governance/audit/" in html:
            failures.append(f"{label}: links the audit log")
        if not sees_admin and 'href="/admin/' in html:
            failures.append(f"{label}: links the Django admin")
        failures += [f"{label}: {problem}" for problem in tab.problems]
        failures += [f"{label}: axe {violation}" for violation in tab.axe_violations()]
        current = tab.page.locator(".sidenav a[aria-current=page]")
        if current.count() != 1 or current.inner_text() != label:
            failures.append(f"{label}: navigation marks {current.all_inner_texts()} as current")
        if label == "Overview" and tab.page.locator(".chart .main-svg").count() < 3:
            failures.append("Overview: fewer than 3 charts drawn")
        if role == "admin":
            tab.screenshot(label, role=role)
    tab.page.click(".logout-form button")
    return [f"{role}: {failure}" for failure in failures]


def test_every_page_renders_cleanly_for_each_role(world, browser_tab):
    """One world, each role in turn (seeding and flushing the live-server database per role would
    triple the module's time)."""
    failures = []
    for role in ROLES:
        failures += _check_pages_as(browser_tab, role, world["users"][role].username)
    assert not failures, "\n".join(failures)


def test_a_lead_cannot_reach_another_teams_edit_form(people, browser_tab):
    world = people
    browser_tab.login("lead1")
    browser_tab.visit("/governance/budgets/")
    html = browser_tab.page.content()
    assert f"/governance/budgets/{world['ads_budget'].pk}/edit" not in html
    response = browser_tab.page.goto(
        f"{browser_tab.base_url}/governance/budgets/{world['ads_budget'].pk}/edit"
    )
    assert response.status in (403, 404)
    assert "Ads monthly" not in browser_tab.page.content()
    # Their own team's form opens.
    response = browser_tab.page.goto(
        f"{browser_tab.base_url}/governance/budgets/{world['search_budget'].pk}/edit"
    )
    assert response.status == 200
    assert browser_tab.page.locator("form input[name=name]").input_value() == "Search monthly"


def test_an_explorer_filter_changes_chart_and_address_and_a_reload_restores_it(world, browser_tab):
    browser_tab.login("finance1")
    browser_tab.visit("/explorer/?start=2026-09-01&end=2026-10-20&granularity=week")
    page = browser_tab.page
    legend = page.locator("[data-figure=explorer] .legendtext").all_text_contents()
    assert "AWS" in legend and "Google Cloud" in legend

    page.select_option("#id_group_by", "team")
    page.click(".filters button[type=submit]")
    page.wait_for_url("**group_by=team**")
    page.wait_for_selector("[data-figure=explorer] .main-svg")
    team_legend = page.locator("[data-figure=explorer] .legendtext").all_text_contents()
    assert "search" in team_legend and "AWS" not in team_legend
    address = page.url

    page.reload()
    page.wait_for_selector("[data-figure=explorer] .main-svg")
    assert page.url == address
    assert page.locator("#id_group_by").input_value() == "team"
    assert page.locator("[data-figure=explorer] .legendtext").all_text_contents() == team_legend
    assert browser_tab.problems == []


def test_grouping_by_sku_and_by_a_tag_key_changes_chart_and_address(world, browser_tab):
    browser_tab.login("finance1")
    browser_tab.visit("/explorer/?start=2026-09-01&end=2026-10-20&granularity=month")
    page = browser_tab.page

    page.select_option("#id_group_by", "sku")
    page.click(".filters button[type=submit]")
    page.wait_for_url("**group_by=sku**")
    page.wait_for_selector("[data-figure=explorer] .main-svg")
    sku_legend = page.locator("[data-figure=explorer] .legendtext").all_text_contents()
    assert "ml.p5.48xlarge-hours" in sku_legend and "AWS" not in sku_legend

    # Tag keys present in the rows are offered; grouping by one splits tagged spend by value and
    # shows the rest (here: unallocated cost) as "(none)".
    page.select_option("#id_group_by", "tag:env")
    page.click(".filters button[type=submit]")
    page.wait_for_url("**group_by=tag%3Aenv**")
    page.wait_for_selector("[data-figure=explorer] .main-svg")
    assert sorted(page.locator("[data-figure=explorer] .legendtext").all_text_contents()) == [
        "(none)",
        "prod",
        "staging",
    ]

    # A tag filter with another group-by, kept in the address and restored on reload.
    page.select_option("#id_group_by", "team")
    page.locator("details.filters__more").evaluate("element => element.open = true")
    page.select_option("#id_f_tag", "env=staging")
    page.click(".filters button[type=submit]")
    page.wait_for_url("**f_tag=env%3Dstaging**")
    page.wait_for_selector("[data-figure=explorer] .main-svg")
    # One series: Plotly draws no legend for it, so read the table under the chart.
    assert page.locator("#explorer-table tbody th").all_inner_texts() == ["support"]
    address = page.url
    page.reload()
    page.wait_for_selector("[data-figure=explorer] .main-svg")
    assert page.url == address and page.locator("#id_f_tag").input_value() == "env=staging"
    assert browser_tab.problems == []


def test_a_click_on_an_overview_series_opens_its_explorer_url(world, browser_tab):
    """A provider's bars carry one explorer URL for the whole series (trace meta); a click on any of
    them opens it (Plotly's drag layer swallows real clicks on bars, so the click event is emitted)."""
    browser_tab.login("finance1")
    browser_tab.visit("/")
    page = browser_tab.page
    page.wait_for_selector("[data-figure=by_provider] .main-svg")
    url = page.evaluate(
        """() => {
            const chart = document.querySelector("[data-figure=by_provider]");
            const trace = chart.data.find((item) => item.meta && item.meta.explorer_url);
            chart.emit("plotly_click", {points: [{data: trace, pointNumber: 0}]});
            return trace.meta.explorer_url;
        }"""
    )
    assert url.startswith("/explorer/") and "f_provider=" in url
    page.wait_for_url("**/explorer/?**f_provider=**")
    page.wait_for_selector("[data-figure=explorer] .main-svg")
    assert browser_tab.problems == []


def test_an_overview_figure_opens_the_explorer_that_explains_it(world, browser_tab):
    browser_tab.login("finance1")
    browser_tab.visit("/")
    page = browser_tab.page
    assert page.locator("#overview-alerts-title").count() == 1
    assert page.locator("#overview-savings-title").count() == 1
    page.click("#mtd-link")
    page.wait_for_url("**/explorer/?**group_by=provider**")
    page.wait_for_selector("[data-figure=explorer] .main-svg")
    assert "start=2026-10-01" in page.url and "granularity=month" in page.url
    assert "AWS" in page.locator("[data-figure=explorer] .legendtext").all_text_contents()
    assert browser_tab.problems == []


def test_the_overflow_check_catches_a_table_wider_than_its_box(people, browser_tab):
    """The check every visit runs (harness.OVERFLOW_JS): a table wider than its box is reported, the page
    scrolling sideways is reported, and an intended scroll wrapper is not."""
    browser_tab.login("admin1")
    browser_tab.visit("/settings/teams/")
    assert browser_tab.overflow_problems() == []
    page = browser_tab.page
    page.evaluate(
        """() => {
            const wrap = document.createElement("div");
            wrap.className = "table-wrap";
            wrap.innerHTML = '<table class="data-table" id="too-wide">'
                + '<tr><td style="min-width: 1500px">x</td></tr></table>';
            document.querySelector("main, .page").appendChild(wrap);
        }"""
    )
    problems = browser_tab.overflow_problems()
    assert len(problems) == 1 and problems[0].startswith("at 1280 px: table too-wide is "), problems
    page.evaluate(
        "() => document.querySelector('#too-wide').parentElement.classList.add('table-wrap--scroll')"
    )
    assert browser_tab.overflow_problems() == []
    page.evaluate(
        """() => {
            const banner = document.createElement("div");
            banner.style.width = "1600px";
            banner.textContent = "wide";
            document.body.appendChild(banner);
        }"""
    )
    assert any("the page scrolls sideways" in problem for problem in browser_tab.overflow_problems())
