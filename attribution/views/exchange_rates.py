"""Settings → Exchange rates: the dated rates with filters, and for holders of the rate permissions
(admin, finance; see setup_roles) a form to add one rate and a bulk CSV load. Both writes go through
attribution.currency.services, which validates every row and audits the change."""

from __future__ import annotations

import csv
import datetime as dt
import io

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from attribution.currency.selectors import RateFilters, exchange_rate_currencies, exchange_rates_page
from attribution.currency.services import ExchangeRateRowError, exchange_rate_save, exchange_rates_upsert
from attribution.models import ExchangeRate

# The same permissions as the API's load (attribution/api/currency.py): adding a rate may replace one.
EDIT_PERMISSIONS = ("attribution.add_exchangerate", "attribution.change_exchangerate")
MAX_LOAD_ROWS = 5000
MAX_LOAD_BYTES = 2 * 1024 * 1024


class ExchangeRateForm(forms.Form):
    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    from_currency = forms.CharField(
        max_length=3, min_length=3, label="From", help_text="ISO 4217 code, e.g. EUR"
    )
    to_currency = forms.CharField(max_length=3, min_length=3, label="To", help_text="e.g. USD")
    rate = forms.DecimalField(
        max_digits=24, decimal_places=12, help_text="1 unit of From is this many units of To"
    )
    source = forms.CharField(max_length=100, required=False, help_text="e.g. ecb, treasury")


class ExchangeRateLoadForm(forms.Form):
    file = forms.FileField(
        required=False, label="CSV file", help_text="Header: date,from,to,rate (ISO dates and codes)"
    )
    text = forms.CharField(
        required=False,
        label="Or paste CSV",
        widget=forms.Textarea(
            attrs={"rows": 5, "placeholder": "date,from,to,rate\n2026-10-20,EUR,USD,1.0817"}
        ),
    )
    source = forms.CharField(max_length=100, required=False, help_text="Where the rates come from")

    def clean(self) -> dict:
        data = super().clean()
        upload, text = data.get("file"), (data.get("text") or "").strip()
        if bool(upload) == bool(text):
            raise ValidationError("Choose a CSV file or paste CSV text (one of the two).")
        if upload is not None:
            if upload.size > MAX_LOAD_BYTES:
                raise ValidationError(
                    f"The file is larger than {MAX_LOAD_BYTES // 1024 // 1024} MB; split it."
                )
            try:
                text = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError as error:
                raise ValidationError("The file is not UTF-8 text; save it as CSV (UTF-8).") from error
        reader = csv.DictReader(io.StringIO(text))
        header = [name.strip().lower() for name in (reader.fieldnames or [])]
        missing = [name for name in ("date", "from", "to", "rate") if name not in header]
        if missing:
            raise ValidationError(
                f"The first line must be the header date,from,to,rate; missing: {', '.join(missing)}."
            )
        rows = [{(key or "").strip().lower(): value for key, value in row.items()} for row in reader]
        if not rows:
            raise ValidationError("The CSV has a header but no rates.")
        if len(rows) > MAX_LOAD_ROWS:
            raise ValidationError(
                f"At most {MAX_LOAD_ROWS} rates per load; split the file (got {len(rows)})."
            )
        data["rows"] = rows
        return data


def _filters(request: HttpRequest) -> tuple[RateFilters, dict]:
    selected = {name: request.GET.get(name, "").strip() for name in ("from", "to", "since", "until")}
    days: dict[str, dt.date | None] = {}
    for name in ("since", "until"):
        try:
            days[name] = dt.date.fromisoformat(selected[name]) if selected[name] else None
        except ValueError:
            messages.error(
                request, f"{name.capitalize()} must be a date (YYYY-MM-DD); that filter was not applied."
            )
            days[name] = None
    filters = RateFilters(
        from_currency=selected["from"], to_currency=selected["to"], since=days["since"], until=days["until"]
    )
    return filters, selected


def _render(request: HttpRequest, *, form=None, load_form=None, status: int = 200) -> HttpResponse:
    filters, selected = _filters(request)
    may_edit = request.user.has_perms(EDIT_PERMISSIONS)
    context = {
        "page": exchange_rates_page(filters=filters, page_number=request.GET.get("page", 1)),
        "selected": selected,
        "currencies": exchange_rate_currencies(),
        "may_edit": may_edit,
    }
    if may_edit:
        context["form"] = form or ExchangeRateForm()
        context["load_form"] = load_form or ExchangeRateLoadForm()
    return render(request, "attribution/settings/exchange_rates.html", context, status=status)


@login_required
@permission_required("attribution.view_exchangerate", raise_exception=True)
@require_http_methods(["GET", "POST"])
def exchange_rates(request: HttpRequest) -> HttpResponse:
    """GET lists; POST with `form=add` adds one rate, with `form=load` loads a CSV (one URL, so the
    page and its forms answer the same permission rules)."""
    if request.method == "GET":
        return _render(request)
    if not request.user.has_perms(EDIT_PERMISSIONS):
        raise PermissionDenied(
            "Adding exchange rates needs the exchange-rate permissions (admin or finance)."
        )
    if request.POST.get("form") == "load":
        return _load(request)
    return _add(request)


def _add(request: HttpRequest) -> HttpResponse:
    form = ExchangeRateForm(request.POST)
    if form.is_valid():
        values = form.cleaned_data
        from_currency, to_currency = values["from_currency"].upper(), values["to_currency"].upper()
        rate = ExchangeRate.objects.filter(
            date=values["date"], from_currency=from_currency, to_currency=to_currency
        ).first() or ExchangeRate(date=values["date"], from_currency=from_currency, to_currency=to_currency)
        replaced = rate.pk is not None
        rate.rate, rate.source = values["rate"], (values["source"] or "").strip() or "settings page"
        try:
            exchange_rate_save(rate=rate, actor=request.user, remote_addr=request.META.get("REMOTE_ADDR"))
        except ValidationError as error:
            form.add_error(None, error)
        else:
            verb = "replaced" if replaced else "added"
            messages.success(request, f"Rate {verb}: {rate}.")
            return redirect("settings_rates:index")
    return _render(request, form=form, status=400)


def _load(request: HttpRequest) -> HttpResponse:
    form = ExchangeRateLoadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            changes = exchange_rates_upsert(
                rows=form.cleaned_data["rows"],
                source=form.cleaned_data["source"] or "settings upload",
                first_row_number=2,  # line 1 is the header: errors name the file's own line numbers
                actor=request.user,
                remote_addr=request.META.get("REMOTE_ADDR"),
            )
        except ExchangeRateRowError as error:
            for message in error.errors[:50]:
                form.add_error(None, message)
            if len(error.errors) > 50:
                form.add_error(None, f"... and {len(error.errors) - 50} more. Nothing was loaded.")
            else:
                form.add_error(None, "Nothing was loaded; fix these lines and load the file again.")
        else:
            created = sum(1 for change in changes if change.created)
            unchanged = len(form.cleaned_data["rows"]) - len(changes)
            messages.success(
                request,
                f"Loaded: {created} new, {len(changes) - created} changed, {unchanged} unchanged.",
            )
            return redirect("settings_rates:index")
    return _render(request, load_form=form, status=400)
