"""In a real browser: the explorer's date labels stay legible over 90 days at both widths, and the
Alerts page's reasons open the cost explorer on exactly the spend they name (as a team lead)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum

from attribution.models import DailyCost
from governance.models import Alert
from tests.browser.harness import WIDTHS
from tests.browser.test_pages import people, world  # noqa: F401 (fixtures)

# Each x tick label's box and rotation, in the explorer chart.
TICK_LABELS_JS = """() => Array.from(
  document.querySelectorAll("[data-figure=explorer] .xtick text")
).map(t => {
  const box = t.getBoundingClientRect();
  const rotated = /rotate/.test(t.getAttribute("transform") || "");
  return {text: t.textContent, left: box.left, right: box.right, rotated: rotated};
})"""


@pytest.mark.parametrize("granularity", ["day", "week"])
def test_the_explorers_date_labels_never_overlap_over_90_days(world, browser_tab, granularity):  # noqa: F811
    browser_tab.login("finance1")
    browser_tab.visit(f"/explorer/?start=2026-07-23&end=2026-10-20&granularity={granularity}")
    page = browser_tab.page
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(200)  # Plotly relayouts on resize
        labels = sorted(page.evaluate(TICK_LABELS_JS), key=lambda label: label["left"])
        assert len(labels) >= 4, labels
        assert not [label["text"] for label in labels if label["rotated"]], f"rotated at {width} px"
        # A gap between every two neighbours: no label touches the next.
        neighbours = zip(labels, labels[1:], strict=False)
        crowded = [(a["text"], b["text"]) for a, b in neighbours if a["right"] + 4 > b["left"]]
        assert not crowded, f"at {width} px: {crowded}"
    assert browser_tab.problems == []


def test_a_lead_opens_an_anomalys_reason_in_the_explorer(world, browser_tab):  # noqa: F811
    search = world["search_budget"].team
    day = dt.date(2026, 10, 20)
    Alert.objects.create(
        kind="anomaly", team=search, message="Team search spent more than usual", dedup_key="anomaly:search",
        details={
            "dimension": "team", "value": "search", "day": day.isoformat(), "currency": "USD",
            "contributors": [
                {"dimension": "deployment", "value": "llama70b-aws-use1-h100", "delta": "192.00"}
            ],
        },
    )  # fmt: skip
    Alert.objects.create(
        kind="anomaly", team=world["ads_budget"].team, message="Team ads spent more than usual",
        dedup_key="anomaly:ads",
        details={"dimension": "team", "value": "ads", "day": day.isoformat(), "currency": "USD",
                 "contributors": [{"dimension": "deployment", "value": "ads-only-h100", "delta": "9.00"}]},
    )  # fmt: skip
    browser_tab.login("lead1")
    for width in WIDTHS:
        browser_tab.page.set_viewport_size({"width": width, "height": 900})
        browser_tab.visit("/governance/alerts/")
        assert browser_tab.problems == [] and browser_tab.axe_violations() == []
    page = browser_tab.page
    assert page.locator(".contributors a").all_inner_texts() == ["Deployment llama70b-aws-use1-h100"]
    assert "ads-only-h100" not in page.content()

    page.click(".contributors a")
    page.wait_for_selector("[data-figure=explorer] .main-svg")
    assert "f_deployment=llama70b-aws-use1-h100" in page.url and "f_team=search" in page.url
    expected = DailyCost.objects.filter(
        team=search,
        deployment__slug="llama70b-aws-use1-h100",
        day__range=(day - dt.timedelta(days=13), day),
        billing_currency="USD",
    ).aggregate(total=Sum("effective_cost"))["total"]
    assert expected > Decimal(0)
    assert page.locator("#explorer-table tfoot td").last.inner_text().strip() == f"${expected:,.2f}"
    assert browser_tab.problems == []
