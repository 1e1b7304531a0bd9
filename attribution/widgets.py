"""Form widgets for the pages' filter forms.

`PlainSelect` renders the same elements as Django's `Select` (the same name, id, attributes,
optgroups, escaped labels and `selected` option, in the same order), but joins its options in
Python. Its output is not byte-identical: Django's template includes leave blank lines between the
options, PlainSelect does not (tests/ui/test_widgets.py compares the two with those blank lines
removed); browsers build the same DOM from both. Django renders every option through two template
includes: a filter form with a few hundred options (the explorer's SKUs, tags, services) spent
10-20 ms of each request on them.
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
