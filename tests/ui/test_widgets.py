"""Plain widgets render what Django's render (bar the blank lines and newlines its templates leave)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django import forms

from attribution.widgets import (
    PlainCheckboxInput,
    PlainDateInput,
    PlainNumberInput,
    PlainSelect,
    PlainTextInput,
)

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


class _InputForm(forms.Form):
    text = forms.CharField(max_length=20, required=False)
    number = forms.DecimalField(max_digits=8, decimal_places=2)
    day = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date", "class": "d"}))
    flag = forms.BooleanField(required=False)


class _PlainInputForm(forms.Form):
    text = forms.CharField(max_length=20, required=False, widget=PlainTextInput)
    number = forms.DecimalField(max_digits=8, decimal_places=2, widget=PlainNumberInput)
    day = forms.DateField(required=False, widget=PlainDateInput(attrs={"type": "date", "class": "d"}))
    flag = forms.BooleanField(required=False, widget=PlainCheckboxInput)


@pytest.mark.parametrize(
    ("data", "initial"),
    [
        (None, {}),
        (
            None,
            {"text": 'a & <b>"x"</b>', "number": Decimal("12.50"), "day": dt.date(2026, 3, 1), "flag": True},
        ),
        ({"text": "<script>", "number": "not a number", "day": "2026-02-30", "flag": "on"}, {}),
        ({"number": "1.5"}, {}),
    ],
)
def test_plain_inputs_render_the_same_html_as_djangos(data, initial):
    """Values (escaped, formatted), the field's attributes (maxlength, step, required, type), the
    error attributes of a bound form and `checked`: all as Django writes them."""
    django, plain = _InputForm(data, initial=initial), _PlainInputForm(data, initial=initial)
    for name in django.fields:
        assert str(plain[name]) == str(django[name]).strip(), name
    assert (" checked" in str(plain["flag"])) == bool((data or initial).get("flag"))
