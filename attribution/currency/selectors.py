"""Reads of exchange rates for the Settings page."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.paginator import Page, Paginator

from attribution.models import ExchangeRate

RATES_PER_PAGE = 50


@dataclass(frozen=True)
class RateFilters:
    from_currency: str = ""
    to_currency: str = ""
    since: dt.date | None = None
    until: dt.date | None = None


def exchange_rates_page(*, filters: RateFilters, page_number: int | str = 1) -> Page:
    """One page of rates, newest first; two queries (count and rows) whatever the page size."""
    rates = ExchangeRate.objects.order_by("-date", "from_currency", "to_currency", "id")
    if filters.from_currency:
        rates = rates.filter(from_currency=filters.from_currency.upper())
    if filters.to_currency:
        rates = rates.filter(to_currency=filters.to_currency.upper())
    if filters.since:
        rates = rates.filter(date__gte=filters.since)
    if filters.until:
        rates = rates.filter(date__lte=filters.until)
    return Paginator(rates, RATES_PER_PAGE).get_page(page_number)


def exchange_rate_currencies() -> list[str]:
    """Every currency that appears on either side of a rate, for the filter menus."""
    sides = ExchangeRate.objects.order_by().values_list("from_currency", "to_currency").distinct()
    return sorted({code for pair in sides for code in pair})
