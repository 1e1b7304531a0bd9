"""The cost explorer page: the whole state is in the query string, so a view can be bookmarked and
shared; `?format=csv` downloads exactly the table on screen."""

from __future__ import annotations

import csv
import datetime as dt

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from attribution.costs import explorer
from attribution.widgets import PlainSelect

DEFAULT_DAYS = 30
# `note=<figure>`: the view was opened from that Overview figure, which adds estimated spend to the
# bills; the page then says how much of the figure is estimated (the explorer shows bills only).
NOTE_FIGURES = {"spend": "Spend", "month_to_date": "Month to date"}


class ExplorerForm(forms.Form):
    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    group_by = forms.ChoiceField(
        required=False,
        label="Group by",
        widget=PlainSelect,
        choices=[(key, label) for key, (label, _) in explorer.DIMENSIONS.items()],
    )
    granularity = forms.ChoiceField(
        required=False, label="Period", choices=list(explorer.GRANULARITIES.items())
    )
    cost = forms.ChoiceField(
        required=False, label="Cost", choices=[(key, label) for key, (label, _) in explorer.COSTS.items()]
    )
    currency = forms.ChoiceField(required=False, label="Currency", widget=PlainSelect)

    def __init__(self, *args, choices: dict[str, list[str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        reporting = settings.REPORTING_CURRENCY
        currencies = sorted({reporting, *choices["currency"]})
        self.fields["currency"].choices = [(code, code) for code in currencies]
        # Any tag key present in the rows the user may see groups and filters, like a dimension.
        tags: dict[str, list[str]] = choices.get("tags", {})
        self.fields["group_by"].choices = [
            *self.fields["group_by"].choices,
            *((f"{explorer.TAG_PREFIX}{key}", f"Tag: {key}") for key in tags),
        ]
        # The filters list every value in the user's rows (hundreds of SKUs and tags): PlainSelect.
        self.fields["f_tag"] = forms.ChoiceField(
            required=False,
            label="Tag",
            widget=PlainSelect,
            choices=[
                ("", "Any"),
                *(
                    (f"{key}={value}", f"{key} = {value}")
                    for key, values in tags.items()
                    for value in [*values, explorer.NONE_LABEL]
                ),
            ],
        )
        # One filter per dimension: "any", a value seen in the user's rows, or "(none)".
        for name, (label, _) in explorer.DIMENSIONS.items():
            self.fields[f"f_{name}"] = forms.ChoiceField(
                required=False,
                label=label,
                widget=PlainSelect,
                choices=[
                    ("", "Any"),
                    *((value, value) for value in choices[name]),
                    (explorer.NONE_LABEL, "(none)"),
                ],
            )

    @property
    def filter_fields(self):
        return [*(self[f"f_{name}"] for name in explorer.DIMENSIONS), self["f_tag"]]

    def clean(self) -> dict:
        cleaned = super().clean()
        group_tag = explorer.tag_group_key(cleaned.get("group_by") or "")
        tag_filter = cleaned.get("f_tag")
        if tag_filter and group_tag is not None and tag_filter.split("=", 1)[0] != group_tag:
            # Spend per pair of tag keys is not rolled up; one key at a time keeps every figure exact.
            self.add_error(
                "f_tag",
                f"Filter on the tag you group by ({group_tag}), or group by a dimension that is not a tag.",
            )
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if start > end:
                raise forms.ValidationError("The start date must be on or before the end date.")
            granularity = cleaned.get("granularity") or "day"
            longest = explorer.MAX_RANGE_DAYS.get(granularity, explorer.MAX_RANGE_DAYS["day"])
            if (end - start).days + 1 > longest:
                hint = " by day; choose weeks or months for longer" if granularity == "day" else ""
                raise forms.ValidationError(f"Choose a range of at most {longest} days{hint}.")
        return cleaned

    def to_query(self, *, today: dt.date) -> explorer.ExplorerQuery:
        # `today` is the default end: the latest billed day, or the calendar day if nothing is billed.
        """The valid fields as a query; an invalid field falls back to its default (its error shown)."""
        data = {}
        if self.is_bound:
            self.is_valid()
            data = {key: value for key, value in self.cleaned_data.items() if key not in self.errors}
            if self.non_field_errors():
                data.pop("start", None)
                data.pop("end", None)
        end = data.get("end") or today
        start = data.get("start") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
        return explorer.ExplorerQuery(
            start=start,
            end=end,
            group_by=data.get("group_by") or "provider",
            granularity=data.get("granularity") or "day",
            cost=data.get("cost") or "billed",
            currency=data.get("currency") or settings.REPORTING_CURRENCY,
            filters={name: data[f"f_{name}"] for name in explorer.DIMENSIONS if data.get(f"f_{name}")},
            tag_filter=tuple(data["f_tag"].split("=", 1)) if data.get("f_tag") else None,
        )


@login_required
@require_GET
def explorer_page(request: HttpRequest) -> HttpResponse:
    choices = explorer.explorer_filter_choices(user=request.user)
    params = request.GET.copy()
    params.pop("format", None)
    note_figure = NOTE_FIGURES.get(params.pop("note", [""])[-1], "")
    form = ExplorerForm(params or None, choices=choices)
    latest = explorer.explorer_latest_day(user=request.user)
    today = timezone.localdate()
    query = form.to_query(today=min(today, latest) if latest else today)
    result = explorer.explorer_build(user=request.user, query=query)
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="costs-by-{query.group_by}-{query.start}-{query.end}.csv"'
        )
        csv.writer(response).writerows(result.csv_rows())
        return response
    if not form.is_bound:
        form = ExplorerForm(
            initial={
                "start": query.start,
                "end": query.end,
                "group_by": query.group_by,
                "granularity": query.granularity,
                "cost": query.cost,
                "currency": query.currency,
            },
            choices=choices,
        )
    csv_query = request.GET.copy()
    csv_query["format"] = "csv"
    estimates_note = explorer.explorer_estimates_note(user=request.user, query=query) if note_figure else None
    return render(
        request,
        "attribution/explorer.html",
        {
            "form": form,
            "result": result,
            "figures": {"explorer": result.figure},
            "csv_url": "?" + csv_query.urlencode(),
            "note_figure": note_figure,
            "estimates_note": estimates_note,
        },
    )
