"""The Unallocated page: billed cost no team carries and the suggested rules that would fix it."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from attribution.api.rules import user_may_edit_rules
from attribution.mapping.unallocated import unallocated_page_build


class RangeForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("start") and cleaned.get("end") and cleaned["start"] > cleaned["end"]:
            raise forms.ValidationError("The start date must not be after the end date.")
        return cleaned


@login_required
@require_GET
def unallocated_page(request: HttpRequest) -> HttpResponse:
    form = RangeForm(request.GET or None)
    start = end = None
    if form.is_bound and form.is_valid():
        start, end = form.cleaned_data.get("start"), form.cleaned_data.get("end")
    page = unallocated_page_build(user=request.user, start=start, end=end)
    user = request.user
    can_decide = user_may_edit_rules(user)
    return render(
        request,
        "attribution/unallocated.html",
        {"form": form, "page": page, "can_decide": can_decide, "figures": {"trend": page.trend}},
    )
