"""The Overview's longest tables' rows, rendered in Python (templates/attribution/overview_content.html).

The page lists some 65 such rows of 5-7 cells. Through the template language each cell is a
variable lookup, a filter call and an autoescape, and each row a loop iteration with its own
context: several ms of the computed page's CPU (bench/overview_cold.py). Here each row is one
`format_html` over values formatted once. The text is the template's, byte for byte: the same
filter (`floatfmt`), the same escaping (`format_html` escapes as autoescape does), the same white
space between rows; tests/attribution/views/test_overview_rows.py renders these rows through the
old loops and compares.
"""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from attribution.costs.overview import Overview
from attribution.templatetags.ui import floatfmt_in_current_language

# What the template put around each row of a loop: its indentation and line breaks.
_ROW_START = "\n          "
_ROW_END = "\n          "

_DEPLOYMENT_ROW = """<tr>
            <td>
              <div class="mono">{}</div>
              <div class="cell-sub">{} · {}</div>
            </td>
            <td>{} · {}</td>
            <td class="num">{}</td>
            <td class="num">{}</td>
            <td class="num estimated">{}</td>
          </tr>"""
_ACCURACY_GROUP_ROW = (
    '<tr><td>{} <span class="mono">{}</span></td><td class="num">{}</td><td class="num">{}</td>'
    '<td class="num">{}</td><td class="num">{} %</td></tr>'
)
_ACCURACY_ROW = """<tr>
            <td><div class="mono"><a href="{}">{}</a></div><div class="cell-sub">{} · last {}</div></td>
            <td class="num">{}</td>
            <td class="num">{}</td>
            <td class="num">{}</td>
            <td class="num">{}</td>
            <td class="num">{}</td>
            <td class="num calibration">{}</td>
          </tr>"""
_UNIT_COST_ROW = """<tr>
            <td><div>{}</div><div class="cell-sub mono">{} · {} · {}{}</div></td>
            <td class="num">{}</td>
            <td class="num">{}</td>
            <td class="num">{}</td>
            <td class="unit-basis unit-basis--{}">output = {} × input · {}</td>
          </tr>"""
_MUTED_DASH = mark_safe('<span class="muted">—</span>')  # noqa: S308


def _rows(rows) -> SafeString:
    return mark_safe("".join(f"{_ROW_START}{row}{_ROW_END}" for row in rows))  # noqa: S308


def _percent_cell(value, floatfmt) -> SafeString:
    """`{% if value is not None %}{{ value|floatfmt:1 }} %{% else %}—{% endif %}`."""
    return mark_safe("—") if value is None else format_html("{} %", floatfmt(value, 1))  # noqa: S308


def top_deployment_rows(overview: Overview) -> SafeString:
    floatfmt = floatfmt_in_current_language()
    return _rows(
        format_html(
            _DEPLOYMENT_ROW,
            format_html('<a href="{}" id="deployment-{}">{}</a>', row["explorer_url"], slug, slug)
            if row.get("explorer_url")
            else slug,
            row["deployment__model__name"],
            row["pricing_mode_label"],
            row["provider_label"],
            row["deployment__region"],
            floatfmt(row["billed"], "2g"),
            floatfmt(row["effective"], "2g"),
            floatfmt(row["estimated"], "2g") if row["estimated"] else _MUTED_DASH,
        )
        for row in overview.top_deployments
        for slug in (row["deployment__slug"],)
    )


def accuracy_group_rows(overview: Overview) -> SafeString:
    """The per provider rows (median and p90 always there) and then the per basis ones."""
    floatfmt = floatfmt_in_current_language()
    report = overview.accuracy_report
    if report is None:
        return mark_safe("")  # noqa: S308
    by_provider = (
        format_html(
            _ACCURACY_GROUP_ROW,
            "provider",
            group.key,
            group.deployment_days,
            format_html("{} %", floatfmt(group.median_error_percent, 1)),
            format_html("{} %", floatfmt(group.p90_error_percent, 1)),
            floatfmt(group.bias_percent, 1),
        )
        for group in report.by_provider
    )
    by_basis = (
        format_html(
            _ACCURACY_GROUP_ROW,
            "basis",
            group.key,
            group.deployment_days,
            _percent_cell(group.median_error_percent, floatfmt),
            _percent_cell(group.p90_error_percent, floatfmt),
            floatfmt(group.bias_percent, 1),
        )
        for group in report.by_basis
    )
    # Two loops in the template: the line between them stays.
    return mark_safe(f"{_rows(by_provider)}\n          {_rows(by_basis)}")  # noqa: S308


def accuracy_rows(overview: Overview) -> SafeString:
    floatfmt = floatfmt_in_current_language()
    return _rows(
        format_html(
            _ACCURACY_ROW,
            row.accuracy_url,
            row.deployment_slug,
            row.currency,
            row.last_day_label,
            row.days,
            floatfmt(row.estimated, "2g"),
            floatfmt(row.billed, "2g"),
            row.mape_text,
            row.bias_text,
            row.factor_cells,
        )
        for row in overview.estimate_accuracy
    )


def unit_cost_rows(overview: Overview) -> SafeString:
    floatfmt = floatfmt_in_current_language()
    return _rows(
        format_html(
            _UNIT_COST_ROW,
            row["model__name"],
            row["deployment__slug"],
            row["provider_label"],
            row["day_label"],
            format_html(" · in {} (no rate)", row["shown_currency"])
            if row["shown_currency"] != overview.currency
            else "",
            floatfmt(row["cost_per_1m_input_tokens"], "4g") or "—",
            floatfmt(row["cost_per_1m_output_tokens"], "4g") or "—",
            floatfmt(row["cost_per_1k_requests"], "4g") or "—",
            row["ratio_source"] or "unknown",
            floatfmt(row["output_input_ratio"], "-2") or "?",
            row["ratio_label"],
        )
        for row in overview.unit_costs
    )
