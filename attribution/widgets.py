"""Form widgets for the pages' forms, rendered in Python instead of through Django's widget templates.

`PlainSelect` renders the same elements as Django's `Select` (the same name, id, attributes,
optgroups, escaped labels and `selected` option, in the same order), but joins its options in
Python. Its output is not byte-identical: Django's template includes leave blank lines between the
options, PlainSelect does not (tests/ui/test_widgets.py compares the two with those blank lines
removed); browsers build the same DOM from both. Django renders every option through two template
includes: a filter form with a few hundred options (the explorer's SKUs, tags, services) spent
10-20 ms of each request on them.

The `Plain*Input` widgets do the same for `<input>`: the budget form (a dozen fields and a row of
five per threshold) spent 20 ms of its page's CPU rendering widget templates. Their HTML is
Django's without the trailing newlines its templates leave.
"""

from __future__ import annotations

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe


def _attributes(attrs: dict) -> SafeString:
    """As django/forms/widgets/attrs.html writes them: in order, False left out, True bare."""
    return format_html_join(
        "",
        "{}",
        (
            (format_html(" {}", name) if value is True else format_html(' {}="{}"', name, str(value)),)
            for name, value in attrs.items()
            if value is not False
        ),
    )


class PlainSelect(forms.Select):
    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        parts = []
        for group_name, group_choices, _index in widget["optgroups"]:
            options = format_html_join(
                "",
                '\n  <option value="{}"{}>{}</option>',
                (
                    (str(option["value"]), _attributes(option["attrs"]), option["label"])
                    for option in group_choices
                ),
            )
            if group_name:
                parts.append(format_html('\n  <optgroup label="{}">{}\n  </optgroup>', group_name, options))
            else:
                parts.append(options)
        return format_html(
            '<select name="{}"{}>{}\n</select>',
            widget["name"],
            _attributes(widget["attrs"]),
            mark_safe("".join(parts)),  # noqa: S308 (each part built by format_html)
        )


class PlainInputMixin:
    """`<input>` as django/forms/widgets/input.html writes it, from the widget's own context (so
    value formatting, `checked` and the field's attributes are Django's)."""

    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        value_attribute = "" if widget["value"] is None else format_html(' value="{}"', str(widget["value"]))
        return format_html(
            '<input type="{}" name="{}"{}{}>',
            widget["type"],
            widget["name"],
            value_attribute,
            _attributes(widget["attrs"]),
        )


class PlainTextInput(PlainInputMixin, forms.TextInput):
    pass


class PlainNumberInput(PlainInputMixin, forms.NumberInput):
    pass


class PlainDateInput(PlainInputMixin, forms.DateInput):
    pass


class PlainCheckboxInput(PlainInputMixin, forms.CheckboxInput):
    pass
