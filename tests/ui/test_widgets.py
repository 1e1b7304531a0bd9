"""PlainSelect renders what Django's Select renders (bar the blank lines its template includes leave)."""

from __future__ import annotations

import re

import pytest
from django import forms

from attribution.widgets import PlainSelect

CHOICES = [
    ("", "Any"),
    ("a&b", 'A & <b>"quoted"</b>'),
    ("(none)", "(none)"),
    ("Group", [("g1", "G1"), ("g2", "G2")]),
]


class _Form(forms.Form):
    django = forms.ChoiceField(choices=CHOICES, required=False, label="Pick")
    plain = forms.ChoiceField(choices=CHOICES, required=False, label="Pick", widget=PlainSelect)


def _without_blank_lines(html: str) -> str:
    return re.sub(r"\n\s*\n", "\n", html)


@pytest.mark.parametrize("value", [None, "", "a&b", "g2", "(none)", "not a choice"])
def test_it_renders_the_same_html_as_djangos_select(value):
    form = _Form(None if value is None else {"django": value, "plain": value})
    django = _without_blank_lines(str(form["django"]))
    plain = str(form["plain"]).replace("plain", "django")  # its name, id and error ids
    assert plain == django
    assert "A &amp; &lt;b&gt;&quot;quoted&quot;&lt;/b&gt;" in plain  # labels escaped
    assert plain.count(" selected") == (0 if value == "not a choice" else 1)


def test_it_keeps_widget_attributes():
    field = forms.ChoiceField(choices=CHOICES, widget=PlainSelect(attrs={"class": "filter", "data-x": "1"}))
    html = field.widget.render("f", "g1", attrs={"id": "id_f", "required": True})
    assert html.startswith('<select name="f" class="filter" data-x="1" id="id_f" required>')
    assert html == _without_blank_lines(
        forms.Select(attrs={"class": "filter", "data-x": "1"}, choices=CHOICES).render(
            "f", "g1", attrs={"id": "id_f", "required": True}
        )
    )
    assert '<option value="g1" selected>G1</option>' in html
