"""HTML pages of the attribution layer. Views parse input and render; selectors do the reading."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from attribution.costs import movers
from attribution.costs import overview as selectors


class OverviewFilterForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    provider = forms.ChoiceField(required=False)
    team = forms.ChoiceField(required=False)
    model = forms.ChoiceField(required=False)

    def __init__(self, *args, choices: dict[str, list[tuple[str, str]]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [("", "All providers"), *choices["providers"]]
        self.fields["team"].choices = [("", "All teams"), *choices["teams"]]
        self.fields["model"].choices = [("", "All models"), *choices["models"]]

    def clean(self) -> dict:
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if start > end:
                raise forms.ValidationError("The start date must be on or before the end date.")
            if (end - start).days + 1 > selectors.MAX_RANGE_DAYS:
                raise forms.ValidationError(
                    f"Choose a range of at most {selectors.MAX_RANGE_DAYS} days; narrow the dates."
                )
        elif start and not end:
            raise forms.ValidationError("Give an end date too, or leave both dates empty for the default.")
        return cleaned

    def to_filters(self) -> selectors.OverviewFilters:
        """Valid fields as filters; an invalid one falls back to its default (its error is shown)."""
        if not self.is_bound:
            return selectors.OverviewFilters()
        self.is_valid()
        data = {key: value for key, value in self.cleaned_data.items() if key not in self.errors}
        if self.non_field_errors():
            # The range as a whole was wrong: use the default range rather than half of it.
            data.pop("start", None)
            data.pop("end", None)
        model = data.get("model")
        return selectors.OverviewFilters(
            start=data.get("start"),
            end=data.get("end"),
            provider=data.get("provider") or "",
            team=data.get("team") or "",
            model_id=int(model) if model else None,
        )


@login_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    choices = selectors.overview_filter_choices(user=request.user)
    form = OverviewFilterForm(request.GET or None, choices=choices)
    filters = form.to_filters()
    today: dt.date = timezone.localdate()
    overview = selectors.overview_build(
        user=request.user, filters=filters, currency=settings.REPORTING_CURRENCY, today=today
    )
    if not form.is_bound:
        # Show the defaulted range in the date inputs so the user sees what they are looking at.
        form = OverviewFilterForm(initial={"start": overview.start, "end": overview.end}, choices=choices)
    return render(
        request,
        "attribution/overview.html",
        {
            "form": form,
            "overview": overview,
            "figures": overview.figures,
            "movers": movers.top_movers(user=request.user, currency=settings.REPORTING_CURRENCY),
        },
    )
