"""The Overview's table rows rendered in Python (attribution/views/overview_rows.py) are the text the
template loops they replaced wrote, byte for byte: names that need escaping, missing figures, a
unit cost without a ratio or a price."""

# ruff: noqa: E501 (the loops are quoted verbatim, long lines and all)
from __future__ import annotations

from decimal import Decimal

import pytest
from django.template import engines
from django.test import RequestFactory

from attribution.models import ServedModel, UnitCost
from attribution.views.overview import _overview_context
from tests.attribution.views.test_overview_page import LATEST, add_allocation, build_world

pytestmark = pytest.mark.django_db

# The loops as templates/attribution/overview_content.html wrote them before.
_LOOPS = {
    "top_deployments": """{% load ui %}<tbody>
          {% for row in overview.top_deployments %}
          <tr>
            <td>
              <div class="mono">{% if row.explorer_url %}<a href="{{ row.explorer_url }}" id="deployment-{{ row.deployment__slug }}">{{ row.deployment__slug }}</a>{% else %}{{ row.deployment__slug }}{% endif %}</div>
              <div class="cell-sub">{{ row.deployment__model__name }} · {{ row.pricing_mode_label }}</div>
            </td>
            <td>{{ row.provider_label }} · {{ row.deployment__region }}</td>
            <td class="num">{{ row.billed|floatfmt:"2g" }}</td>
            <td class="num">{{ row.effective|floatfmt:"2g" }}</td>
            <td class="num estimated">{% if row.estimated %}{{ row.estimated|floatfmt:"2g" }}{% else %}<span class="muted">—</span>{% endif %}</td>
          </tr>
          {% endfor %}
        </tbody>""",
    "accuracy_groups": """{% load ui %}{% with report=overview.accuracy_report %}<tbody>
          {% for group in report.by_provider %}
          <tr><td>provider <span class="mono">{{ group.key }}</span></td><td class="num">{{ group.deployment_days }}</td><td class="num">{{ group.median_error_percent|floatfmt:1 }} %</td><td class="num">{{ group.p90_error_percent|floatfmt:1 }} %</td><td class="num">{{ group.bias_percent|floatfmt:1 }} %</td></tr>
          {% endfor %}
          {% for group in report.by_basis %}
          <tr><td>basis <span class="mono">{{ group.key }}</span></td><td class="num">{{ group.deployment_days }}</td><td class="num">{% if group.median_error_percent is not None %}{{ group.median_error_percent|floatfmt:1 }} %{% else %}—{% endif %}</td><td class="num">{% if group.p90_error_percent is not None %}{{ group.p90_error_percent|floatfmt:1 }} %{% else %}—{% endif %}</td><td class="num">{{ group.bias_percent|floatfmt:1 }} %</td></tr>
          {% endfor %}
        </tbody>{% endwith %}""",
    "accuracy": """{% load ui %}<tbody>
          {% for row in overview.estimate_accuracy %}
          <tr>
            <td><div class="mono"><a href="{{ row.accuracy_url }}">{{ row.deployment_slug }}</a></div><div class="cell-sub">{{ row.currency }} · last {{ row.last_day_label }}</div></td>
            <td class="num">{{ row.days }}</td>
            <td class="num">{{ row.estimated|floatfmt:"2g" }}</td>
            <td class="num">{{ row.billed|floatfmt:"2g" }}</td>
            <td class="num">{{ row.mape_text }}</td>
            <td class="num">{{ row.bias_text }}</td>
            <td class="num calibration">{{ row.factor_cells }}</td>
          </tr>
          {% endfor %}
        </tbody>""",
    "unit_costs": """{% load ui %}<tbody>
          {% for row in overview.unit_costs %}
          <tr>
            <td><div>{{ row.model__name }}</div><div class="cell-sub mono">{{ row.deployment__slug }} · {{ row.provider_label }} · {{ row.day_label }}{% if row.shown_currency != overview.currency %} · in {{ row.shown_currency }} (no rate){% endif %}</div></td>
            <td class="num">{{ row.cost_per_1m_input_tokens|floatfmt:"4g"|default:"—" }}</td>
            <td class="num">{{ row.cost_per_1m_output_tokens|floatfmt:"4g"|default:"—" }}</td>
            <td class="num">{{ row.cost_per_1k_requests|floatfmt:"4g"|default:"—" }}</td>
            <td class="unit-basis unit-basis--{{ row.ratio_source|default:'unknown' }}">output = {{ row.output_input_ratio|floatfmt:"-2"|default:"?" }} × input · {{ row.ratio_label }}</td>
          </tr>
          {% endfor %}
        </tbody>""",
}


def _as_tbody(rows: str) -> str:
    return f"<tbody>\n          {rows}\n        </tbody>"


@pytest.fixture
def context():
    world = add_allocation(build_world())
    # Names that must be escaped, on a model the tables show.
    ServedModel.objects.filter(pk=world["models"][0].pk).update(name="Llama <70B> & 'friends'")
    # A unit cost with no ratio recorded and no requests figure, on a later day.
    UnitCost.objects.create(
        day=LATEST,
        model=world["models"][1],
        deployment=world["deployments"][1],
        provider="gcp",
        currency="USD",
        effective_cost=Decimal("9.99"),
        requests=0,
        input_tokens=1_000_000,
        output_tokens=0,
        cost_per_1m_input_tokens=Decimal("9.99"),
        cost_per_1m_output_tokens=None,
        cost_per_1k_requests=None,
    )
    request = RequestFactory().get("/")
    request.user = world["people"]["admin"]
    return _overview_context(request)


def test_the_rows_are_the_text_of_the_template_loops(context):
    engine = engines["django"]
    assert context["overview"].top_deployments and context["overview"].unit_costs
    assert context["overview"].estimate_accuracy and context["overview"].accuracy_report
    for name, loop in _LOOPS.items():
        expected = engine.from_string(loop).render(context)
        assert _as_tbody(context["tables"][name]) == expected, name
    assert "Llama &lt;70B&gt; &amp; &#x27;friends&#x27;" in context["tables"]["top_deployments"]
    assert '<td class="num">—</td>' in context["tables"]["unit_costs"]
