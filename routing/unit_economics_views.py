"""The Unit economics page: unit costs per model × deployment over time, and cost vs p95 latency
with each model's Pareto frontier. The whole state is in the query string, like the explorer's."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from routing import unit_economics

DEFAULT_DAYS = 30


class UnitEconomicsForm(forms.Form):
    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    metric = forms.ChoiceField(required=False, label="Chart", choices=list(unit_economics.METRICS.items()))
    model = forms.ChoiceField(required=False, label="Chart model")
    currency = forms.ChoiceField(required=False, label="Currency")

    def __init__(self, *args, currencies: list[str], models: list[tuple[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        codes = sorted({settings.REPORTING_CURRENCY, *currencies})
        self.fields["currency"].choices = [(code, code) for code in codes]
        self.fields["model"].choices = [("", "Costliest in range"), *models]

    def clean(self) -> dict:
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if start > end:
                raise forms.ValidationError("The start date must be on or before the end date.")
            if (end - start).days + 1 > unit_economics.MAX_RANGE_DAYS:
                raise forms.ValidationError(
                    f"Choose a range of at most {unit_economics.MAX_RANGE_DAYS} days."
                )
        return cleaned

    def to_query(self, *, today: dt.date, currencies: list[str]) -> unit_economics.UnitEconomicsQuery:
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
        # Default to the reporting currency, or the only currency there is when that is not it.
        default_currency = currencies[0] if len(currencies) == 1 else settings.REPORTING_CURRENCY
        return unit_economics.UnitEconomicsQuery(
            start=start,
            end=end,
            currency=data.get("currency") or default_currency,
            metric=data.get("metric") or "cost_per_1m_input_tokens",
            model=data.get("model") or "",
        )


@login_required
@require_GET
def unit_economics_page(request: HttpRequest) -> HttpResponse:
    choices = unit_economics.unit_economics_choices(user=request.user)
    currencies, models, latest = choices.currencies, choices.models, choices.latest_day
    form = UnitEconomicsForm(request.GET or None, currencies=currencies, models=models)
    today = timezone.localdate()
    query = form.to_query(today=min(today, latest) if latest else today, currencies=currencies)
    result = unit_economics.unit_economics_build(user=request.user, query=query, currencies=currencies)
    if not form.is_bound:
        form = UnitEconomicsForm(
            initial={
                "start": query.start,
                "end": query.end,
                "metric": query.metric,
                "currency": query.currency,
                "model": query.model,
            },
            currencies=currencies,
            models=models,
        )
    return render(
        request,
        "routing/unit_economics.html",
        {
            "form": form,
            "result": result,
            "figures": result.figures,
            "metric_label": unit_economics.METRICS[query.metric],
        },
    )
