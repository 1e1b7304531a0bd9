"""Issue 13's "Done when", walked in a real browser: a newcomer (finance; a team lead for question 2)
answers the five questions from the UI alone, starting at the Overview and only clicking what is on
screen (no address typed after logging in), in a few clicks each, and what they read equals what the
database says, formatted as the pages format money.

1. What did we spend this month per provider?
2. Which team's spend grew most this week, and on what?
3. What do 1M tokens of each model cost on each cloud and accelerator?
4. Which ingest failed, and why?
5. Which rows were rejected?

The world is small and written here so each figure is known: three clouds, four teams, five
deployments over three weeks of billed days, two days of unit costs, and the demo's own ingest
problems (`demo_problems`: a truncated export that fails, an export with three unreadable rows).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils.text import Truncator

from attribution import design
from attribution.models import DailyCost, IngestRun, RejectedRow, SpendEstimate, UnitCost
from tests.factories import (
    CloudAccountFactory,
    DailyCostFactory,
    DeploymentFactory,
    MembershipFactory,
    ServedModelFactory,
    TeamFactory,
    UserFactory,
)

LATEST = dt.date(2026, 11, 18)  # the last billed day (a Wednesday: weeks do not fall on Mondays)
FIRST = dt.date(2026, 10, 28)  # some October, so "this month" has to leave it out
MAX_CLICKS = 4
# A function, not an expression: Playwright evaluates an expression with eval(), which the pages'
# Content-Security-Policy refuses.
CHARTS_DRAWN = (
    "() => Array.from(document.querySelectorAll('.chart:not(.chart--empty)'))"
    ".every(c => c.querySelector('.main-svg'))"
)
SERVICES = {"aws": "AmazonSageMaker", "gcp": "Vertex AI", "azure": "Azure Machine Learning"}
# deployment slug: model slug, provider, accelerator
DEPLOYMENTS = {
    "llama70b-aws-use1-h100": ("llama-3.1-70b", "aws", "nvidia-h100-80gb"),
    "llama70b-gcp-usc1-a100": ("llama-3.1-70b", "gcp", "nvidia-a100-80gb"),
    "mistral-azure-eastus-h100": ("mistral-large", "azure", "nvidia-h100-94gb"),
    "qwen7b-aws-usw2-l4": ("qwen2.5-7b", "aws", "nvidia-l4"),
    "qwen7b-gcp-usc1-tpu": ("qwen2.5-7b", "gcp", "tpu-v5e"),
}
# team, deployment, daily cost before this week, daily cost this week (the 7 days to LATEST)
SPEND = [
    ("search", "llama70b-aws-use1-h100", 400, 300),  # the largest move, but a fall
    ("assistant", "mistral-azure-eastus-h100", 150, 190),  # assistant grows most, mostly on this
    ("assistant", "llama70b-gcp-usc1-a100", 120, 121),
    ("assistant", "qwen7b-gcp-usc1-tpu", 40, 60),
    ("ads", "qwen7b-aws-usw2-l4", 80, 95),  # the lead's grower
    ("support", "qwen7b-gcp-usc1-tpu", 30, 30),
    (None, "llama70b-aws-use1-h100", 50, 50),  # the shared pool, unallocated
]


@pytest.fixture
def world(tmp_path):
    accounts = {
        provider: CloudAccountFactory(
            slug=f"{provider}-inference", name=f"{provider} inference", provider=provider
        )
        for provider in SERVICES
    }
    teams = {
        slug: TeamFactory(slug=slug, name=slug.title()) for slug in ("search", "assistant", "ads", "support")
    }
    deployments = {}
    for slug, (model_slug, provider, accelerator) in DEPLOYMENTS.items():
        model = ServedModelFactory(slug=model_slug, name=model_slug)
        deployments[slug] = DeploymentFactory(
            slug=slug, model=model, provider=provider, accelerator=accelerator, account=accounts[provider]
        )
    day = FIRST
    while day <= LATEST:
        this_week = day > LATEST - dt.timedelta(days=7)
        for team, slug, before, now in SPEND:
            deployment = deployments[slug]
            # Cents that differ per day, so a figure right to the dollar but wrong to the cent fails.
            cents = Decimal((day.toordinal() * 37 + len(slug)) % 100) / 100
            DailyCostFactory(
                day=day,
                account=accounts[deployment.provider],
                service_name=SERVICES[deployment.provider],
                team=teams[team] if team else None,
                model=deployment.model if team else None,
                deployment=deployment if team else None,
                billed_cost=Decimal(now if this_week else before) + cents,
                effective_cost=Decimal(now if this_week else before),
            )
        day += dt.timedelta(days=1)
    for slug, deployment in deployments.items():
        for offset, factor in ((1, Decimal("1.10")), (0, Decimal(1))):
            base = Decimal(len(slug) * 7 + offset) / 100
            UnitCost.objects.create(
                day=LATEST - dt.timedelta(days=offset),
                model=deployment.model,
                deployment=deployment,
                provider=deployment.provider,
                currency="USD",
                effective_cost=Decimal("100"),
                requests=50_000,
                input_tokens=40_000_000,
                output_tokens=8_000_000,
                cost_per_1m_input_tokens=(base * factor).quantize(Decimal("0.0001")),
                cost_per_1m_output_tokens=(base * 3 * factor).quantize(Decimal("0.0001")),
                cost_per_1k_requests=(base / 2 * factor).quantize(Decimal("0.0001")),
            )
    # Usage of the day after LATEST, not billed yet: estimated, on the Overview and not in the explorer.
    for slug, amount in (("mistral-azure-eastus-h100", "201.37"), ("qwen7b-gcp-usc1-tpu", "58.19")):
        deployment = deployments[slug]
        SpendEstimate.objects.create(
            day=LATEST + dt.timedelta(days=1),
            deployment=deployment,
            team=teams["assistant"],
            model=deployment.model,
            currency="USD",
            estimated_cost=Decimal(amount),
            basis="unit_cost",
        )
    # The demo's own problems, through the real ingest path: a failed run and three rejected rows.
    call_command("demo_problems", out=str(tmp_path), end_date=LATEST, stdout=io.StringIO())
    UserFactory(username="finance1", roles=["finance"])
    lead = UserFactory(username="lead1", roles=["team_lead"])
    MembershipFactory(user=lead, team=teams["search"], role="lead")
    MembershipFactory(user=lead, team=teams["ads"], role="lead")
    return {"teams": teams}


class Newcomer:
    """A browser tab that may only click: every navigation is a click on something visible, counted."""

    def __init__(self, tab, username: str) -> None:
        self.tab, self.page = tab, tab.page
        tab.login(username)  # the only address typed: the login page
        assert self.page.url == f"{tab.base_url}/", "logging in does not land on the Overview"
        self.page.wait_for_function(CHARTS_DRAWN)
        # Logging in checked the login page and the Overview's console; the Overview's layout too.
        tab.problems += tab.overflow_problems()
        self.clicks = 0

    def click(self, locator) -> None:
        assert locator.is_visible(), f"{locator} is not visible"
        self.clicks += 1
        with self.page.expect_navigation():
            locator.click()
        self.page.wait_for_function(CHARTS_DRAWN)
        self.tab.problems += self.tab.overflow_problems()

    def select(self, locator, value: str) -> None:
        assert locator.is_visible(), f"{locator} is not visible"
        self.clicks += 1
        locator.select_option(value)

    def nav(self, label: str) -> None:
        self.click(self.page.locator(".sidenav a", has_text=re.compile(f"^{re.escape(label)}$")))

    def done(self) -> None:
        assert self.clicks <= MAX_CLICKS, f"{self.clicks} clicks"
        assert self.tab.problems == [], self.tab.problems


def _money(amount: Decimal, *, sign: bool = False) -> str:
    return ("+" if sign and amount > 0 else "") + design.money_format(amount, "USD")


def _amount(text: str) -> Decimal:
    return Decimal(re.sub(r"[^0-9.\-]", "", text))


def test_1_what_we_spent_this_month_per_provider(world, browser_tab):
    user = Newcomer(browser_tab, "finance1")
    page = user.page
    card = page.locator(".card", has_text="Month to date")
    card_total = _amount(card.locator("#mtd-link").inner_text())
    card_billed = _amount(card.locator(".split--billed").inner_text())
    user.click(page.locator("#mtd-link"))

    on_screen = {
        row.locator("th").inner_text().strip(): row.locator("td").last.inner_text().strip()
        for row in page.locator("#explorer-table tbody tr").all()
    }
    sums = (
        DailyCost.objects.filter(day__gte=LATEST.replace(day=1), day__lte=LATEST, billing_currency="USD")
        .values("provider")
        .annotate(total=Sum("billed_cost"))
    )
    expected = {design.provider_label(row["provider"]): _money(row["total"]) for row in sums}
    assert on_screen == expected and len(expected) == 3
    header = [cell.strip() for cell in page.locator("#explorer-table thead th").all_text_contents()]
    assert header[1:] == ["2026-11", "Total"]
    # The Overview's month-to-date card said the same, billed part to the cent.
    total = sum((row["total"] for row in sums), Decimal(0))
    assert card_billed == total
    assert page.locator("#explorer-table tfoot td").last.inner_text().strip() == _money(total)
    # The card also counts the estimated day; the explorer (bills only) says how much, on which day,
    # per provider: the card is the table's total plus the note's, to the cent.
    note = page.locator("#estimates-note")
    assert note.is_visible()
    assert card_total == total + _amount(note.locator("#estimates-note-total").inner_text())
    assert note.locator(".estimates-note__provider").all_inner_texts() == [
        "Azure $201.37",
        "Google Cloud $58.19",
    ]
    assert "(Nov 19, 2026)" in note.inner_text()
    user.done()


def _weekly_changes(teams: list[str] | None) -> tuple[dict[str, Decimal], dict[str, dict[str, Decimal]]]:
    """Per team, this week's billed cost minus last week's; per team, the same per model · service."""
    this_week = LATEST - dt.timedelta(days=6)
    rows = DailyCost.objects.filter(
        day__gte=this_week - dt.timedelta(days=7), day__lte=LATEST, team__isnull=False, billing_currency="USD"
    )
    if teams is not None:
        rows = rows.filter(team__slug__in=teams)
    by_team: dict[str, Decimal] = defaultdict(Decimal)
    by_part: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows.select_related("team", "model"):
        change = row.billed_cost if row.day >= this_week else -row.billed_cost
        by_team[row.team.slug] += change
        by_part[row.team.slug][f"{row.model.slug} · {row.service_name}"] += change
    return by_team, by_part


def _top_grower_on_screen(page) -> tuple[str, str, str]:
    """The team whose change is the largest increase, as read from the movers table."""
    rows = page.locator("#movers-team tbody tr").all()
    read = [
        (
            row.locator("th a").inner_text().strip(),
            row.locator("td").last.inner_text().split("\n")[0].strip(),
            row.locator(".mover__driver").inner_text().strip(),
        )
        for row in rows
    ]
    return max(read, key=lambda item: _amount(item[1]))


@pytest.mark.parametrize(
    ("username", "teams"), [("finance1", None), ("lead1", ["search", "ads"])], ids=["finance", "lead"]
)
def test_2_which_team_grew_most_this_week_and_on_what(world, browser_tab, username, teams):
    user = Newcomer(browser_tab, username)
    page = user.page
    by_team, by_part = _weekly_changes(teams)
    grower = max(by_team, key=by_team.get)
    driver = max(by_part[grower], key=by_part[grower].get)
    assert by_team[grower] > 0
    team, change, driver_text = _top_grower_on_screen(page)
    assert (team, change) == (grower, _money(by_team[grower], sign=True))
    assert driver_text == f"mostly {driver} ({_money(by_part[grower][driver], sign=True)})"
    # A lead reads their own teams only.
    shown = set(page.locator("#movers-team tbody th a").all_inner_texts())
    assert shown == set(teams or by_team)

    # The name opens the explorer on that team, by service, over the two weeks compared: one column
    # for the 7 days before and one for the last 7 (LATEST is a Wednesday, so Monday weeks would not
    # do), each the mover's figure, read off the movers table.
    mover_row = page.locator(
        "#movers-team tbody tr", has=page.locator("th a", has_text=re.compile(f"^{re.escape(grower)}$"))
    )
    previous, current = (cell.strip() for cell in mover_row.locator("td").all_inner_texts()[:2])
    user.click(mover_row.locator("th a"))
    assert f"f_team={grower}" in page.url and "group_by=service" in page.url
    header = [cell.strip() for cell in page.locator("#explorer-table thead th").all_text_contents()]
    assert header[1:] == ["2026-11-05 – 2026-11-11", "2026-11-12 – 2026-11-18", "Total"]
    totals = [cell.strip() for cell in page.locator("#explorer-table tfoot td").all_inner_texts()]
    weeks = [
        DailyCost.objects.filter(
            team__slug=grower, day__gte=first, day__lte=first + dt.timedelta(days=6)
        ).aggregate(total=Sum("billed_cost"))["total"]
        for first in (LATEST - dt.timedelta(days=13), LATEST - dt.timedelta(days=6))
    ]
    assert totals == [previous, current, _money(weeks[0] + weeks[1])]
    assert [previous, current] == [_money(weeks[0]), _money(weeks[1])]
    assert driver.split(" · ")[1] in page.locator("#explorer-table tbody th").all_inner_texts()
    user.done()


def test_3_what_1m_tokens_of_each_model_cost_on_each_cloud_and_accelerator(world, browser_tab):
    user = Newcomer(browser_tab, "finance1")
    page = user.page
    user.nav("Unit economics")

    on_screen = set()
    for row in page.locator("#unit-table tbody tr").all():
        cells = row.locator("td")
        note = cells.nth(0).locator(".cell-note").inner_text()
        accelerator = (
            note.split("·")[0].replace(cells.nth(0).locator(".provider-chip").inner_text(), "").strip()
        )
        on_screen.add(
            (
                row.locator("th").inner_text().strip(),
                cells.nth(0).locator(".nowrap").inner_text().strip(),
                cells.nth(0).locator(".provider-chip").inner_text().strip(),
                accelerator,
                cells.nth(1).inner_text().strip(),
                cells.nth(2).inner_text().strip(),
            )
        )
    latest = UnitCost.objects.filter(day=LATEST).select_related("model", "deployment")
    expected = {
        (
            unit.model.name,
            unit.deployment.slug,
            design.provider_label(unit.provider),
            unit.deployment.accelerator,
            _money(unit.cost_per_1m_input_tokens),
            _money(unit.cost_per_1m_output_tokens),
        )
        for unit in latest
    }
    assert on_screen == expected and len(expected) == len(DEPLOYMENTS)
    user.done()


def test_4_which_ingest_failed_and_why(world, browser_tab):
    user = Newcomer(browser_tab, "finance1")
    page = user.page
    user.nav("Ingestion")
    user.select(page.locator("#run-state"), "failed")
    user.click(page.locator("form[aria-label='Filter runs'] button[type=submit]"))

    failed = IngestRun.objects.select_related("account").get(state="failed")
    rows = page.locator("#ingest-runs tbody tr")
    assert rows.count() == 1
    row = rows.first
    assert row.get_attribute("id") == f"run-{failed.pk}"
    assert row.locator(".status").inner_text() == "Failed"
    assert failed.account.slug in row.inner_text() and "2026-10" in row.inner_text()
    assert row.locator(".run-error").inner_text() == Truncator(failed.error).chars(240)
    assert "truncated or corrupt" in failed.error and "sandbox-focus-2026-10.csv.gz" in failed.error
    user.done()


def test_5_which_rows_were_rejected(world, browser_tab):
    user = Newcomer(browser_tab, "finance1")
    page = user.page
    user.nav("Ingestion")
    run = IngestRun.objects.get(rows_rejected__gt=0)
    user.click(page.locator(f"#run-{run.pk} a[href$='/rejected/']"))

    rejected = list(
        RejectedRow.objects.filter(ingest_run=run)
        .order_by("file_path", "line_number")
        .values_list("file_path", "line_number", "reason", "raw_text")
    )
    assert len(rejected) == run.rows_rejected == 3
    on_screen = [
        tuple(cell.strip() for cell in row.locator("td").all_inner_texts()[:3])
        for row in page.locator("#rejected-rows tbody tr").all()
    ]
    assert on_screen == [(path, str(line), reason) for path, line, reason, _raw in rejected]

    user.clicks += 1
    with page.expect_download() as download:
        page.locator("a", has_text="Download CSV").click()
    content = Path(download.value.path()).read_text(encoding="utf-8")
    assert list(csv.reader(io.StringIO(content))) == [
        ["file", "line", "reason", "raw_text"],
        *([path, str(line), reason, raw] for path, line, reason, raw in rejected),
    ]
    user.done()
