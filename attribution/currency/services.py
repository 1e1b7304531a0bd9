"""Exchange rates: load them, look up the rate of a charge date, convert and say which rate was used.

A rate row means 1 `from_currency` = `rate` `to_currency` on `date`. A conversion uses the rate of
the charge date, or the latest earlier one within a staleness window (rates are not published on
weekends and holidays). Nothing is ever converted at an invented 1.0: only the same currency
converts without a rate, and a missing rate is an error that names the pair and the date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DateField, ExpressionWrapper, F, OuterRef, Subquery

from attribution.audit import audited_change_send, model_snapshot, snapshot_changes
from attribution.currency.codes import ISO_4217_CODES
from attribution.models import AllocatedCost, ExchangeRate

# How old the latest rate may be, in days, before a conversion refuses it. A week covers weekends
# and holiday gaps in central-bank series without silently using a rate from last quarter.
DEFAULT_MAX_AGE_DAYS = 7
ONE = Decimal(1)
# The precision of ExchangeRate.rate (decimal_places=12).
RATE_QUANTUM = Decimal("1e-12")
MONEY_QUANTUM = Decimal("1e-10")
MAX_RATE = Decimal("1e12")


class ExchangeRateError(ValueError):
    """A conversion that cannot be made honestly (no rate, or only a stale one)."""


class ExchangeRateRowError(ValueError):
    """A rate row that cannot be loaded; `errors` lists every bad row with its reason."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        shown = "; ".join(errors[:20])
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} exchange-rate row(s) rejected, nothing was loaded: {shown}{more}")


@dataclass(frozen=True)
class Conversion:
    amount: Decimal
    rate: Decimal
    # The date of the rate row used; None when no rate was needed (same currency).
    rate_date: dt.date | None


@dataclass(frozen=True)
class RateChange:
    rate: ExchangeRate
    created: bool
    previous_rate: Decimal | None
    previous_source: str


def max_age_days_setting() -> int:
    return int(getattr(settings, "EXCHANGE_RATE_MAX_AGE_DAYS", DEFAULT_MAX_AGE_DAYS))


def reporting_currency() -> str:
    return settings.REPORTING_CURRENCY


# --- Loading ----------------------------------------------------------------------------------------


def _row_value(row: Mapping[str, object], *names: str) -> str:
    for name in names:
        if name in row and row[name] is not None:
            return str(row[name]).strip()
    return ""


def _parse_row(row: Mapping[str, object], label: str) -> tuple[tuple[dt.date, str, str], Decimal]:
    """Validate one row; raise ValueError with a message that names the row and the bad value."""
    problems = []
    raw_date = _row_value(row, "date")
    day = None
    try:
        day = dt.date.fromisoformat(raw_date)
    except ValueError:
        problems.append(f"date {raw_date!r} is not an ISO date (YYYY-MM-DD)")
    codes = []
    for names in (("from", "from_currency"), ("to", "to_currency")):
        raw = _row_value(row, *names)
        code = raw.upper()
        if code not in ISO_4217_CODES:
            problems.append(f"{names[0]} currency {raw!r} is not an ISO 4217 code")
        codes.append(code)
    raw_rate = _row_value(row, "rate")
    rate = None
    try:
        rate = Decimal(raw_rate)
        if not rate.is_finite() or rate <= 0:
            problems.append(f"rate {raw_rate!r} must be a positive number")
        elif rate >= MAX_RATE:
            problems.append(f"rate {raw_rate!r} is implausibly large")
        elif rate.quantize(RATE_QUANTUM) == 0:
            problems.append(f"rate {raw_rate!r} rounds to 0 at 12 decimal places")
    except InvalidOperation:
        problems.append(f"rate {raw_rate!r} is not a decimal number")
    if not problems and codes[0] == codes[1]:
        problems.append(f"from and to are both {codes[0]}; a currency needs no rate to itself")
    if problems:
        raise ValueError(f"{label}: " + ", ".join(problems))
    return (day, codes[0], codes[1]), rate.quantize(RATE_QUANTUM)


def exchange_rates_upsert(
    *,
    rows: Iterable[Mapping[str, object]],
    source: str,
    first_row_number: int = 1,
    actor: Any = None,
    remote_addr: str | None = None,
) -> list[RateChange]:
    """Validate every row first, then insert or update them by (date, from, to) in one transaction.

    One bad row rejects the whole load (and says which rows and why): a half-loaded rate table
    would convert some days and fail others for no visible reason. A load that changes anything
    is audited as one event summarising the batch (up to 5,000 rows: one event per row would
    bury every other change in the log), in the same transaction.
    """
    parsed: dict[tuple[dt.date, str, str], Decimal] = {}
    errors: list[str] = []
    for index, row in enumerate(rows):
        label = f"row {index + first_row_number}"
        try:
            key, rate = _parse_row(row, label)
        except ValueError as error:
            errors.append(str(error))
            continue
        if key in parsed and parsed[key] != rate:
            errors.append(f"{label}: {key[1]}->{key[2]} on {key[0]} appears twice with different rates")
        parsed[key] = rate
    if errors:
        raise ExchangeRateRowError(errors)
    source = (source or "").strip()[:100]

    changes: list[RateChange] = []
    with transaction.atomic():
        existing = {
            (rate.date, rate.from_currency, rate.to_currency): rate
            for rate in ExchangeRate.objects.select_for_update().filter(
                date__in={key[0] for key in parsed},
                from_currency__in={key[1] for key in parsed},
                to_currency__in={key[2] for key in parsed},
            )
        }
        to_create: list[ExchangeRate] = []
        to_update: list[ExchangeRate] = []
        for key, rate in parsed.items():
            current = existing.get(key)
            if current is None:
                new = ExchangeRate(
                    date=key[0], from_currency=key[1], to_currency=key[2], rate=rate, source=source
                )
                to_create.append(new)
                changes.append(RateChange(new, True, None, ""))
            elif current.rate != rate or current.source != source:
                changes.append(RateChange(current, False, current.rate, current.source))
                current.rate = rate
                current.source = source
                to_update.append(current)
        ExchangeRate.objects.bulk_create(to_create, batch_size=1000)
        ExchangeRate.objects.bulk_update(to_update, ["rate", "source"], batch_size=1000)
        if changes:
            audited_change_send(
                actor=actor,
                action="bulk_load",
                object_type=ExchangeRate._meta.label_lower,
                object_id="bulk",
                object_repr=f"{len(changes)} exchange rate(s) from {source or 'an unnamed source'}",
                changes=_rate_load_summary(changes, source=source),
                remote_addr=remote_addr,
            )
    return changes


# How many changed rates the summary event lists one by one (the counts cover all of them).
AUDIT_LISTED_RATES = 100


def _rate_load_summary(changes: list[RateChange], *, source: str) -> dict[str, Any]:
    days = [change.rate.date for change in changes]
    listed = [
        {
            "date": change.rate.date,
            "from": change.rate.from_currency,
            "to": change.rate.to_currency,
            "before": None
            if change.created
            else {"rate": change.previous_rate, "source": change.previous_source},
            "after": {"rate": change.rate.rate, "source": change.rate.source},
        }
        for change in changes[:AUDIT_LISTED_RATES]
    ]
    return {
        "source": source,
        "created": sum(1 for change in changes if change.created),
        "updated": sum(1 for change in changes if not change.created),
        "first_date": min(days),
        "last_date": max(days),
        "pairs": sorted({f"{c.rate.from_currency}->{c.rate.to_currency}" for c in changes}),
        "rates": listed,
        "rates_truncated": len(changes) > AUDIT_LISTED_RATES,
    }


def exchange_rate_save(
    *, rate: ExchangeRate, actor: Any = None, remote_addr: str | None = None
) -> ExchangeRate:
    """Save one rate edited by hand (the admin), validated like a loaded row, audited."""
    row = {"date": str(rate.date), "from": rate.from_currency, "to": rate.to_currency, "rate": str(rate.rate)}
    try:
        (_day, rate.from_currency, rate.to_currency), rate.rate = _parse_row(row, "this rate")
    except ValueError as error:
        raise ValidationError(str(error)) from None
    with transaction.atomic():
        before = None
        if rate.pk is not None:
            saved = ExchangeRate.objects.select_for_update().filter(pk=rate.pk).first()
            before = model_snapshot(saved) if saved is not None else None
        rate.save()
        audited_change_send(
            actor=actor,
            action="create" if before is None else "update",
            obj=rate,
            changes=snapshot_changes(before, model_snapshot(rate)),
            remote_addr=remote_addr,
        )
    return rate


def exchange_rate_delete(*, rate: ExchangeRate, actor: Any = None, remote_addr: str | None = None) -> None:
    with transaction.atomic():
        audited_change_send(
            actor=actor,
            action="delete",
            obj=rate,
            changes=snapshot_changes(model_snapshot(rate), None),
            remote_addr=remote_addr,
        )
        rate.delete()


def exchange_rates_load(*, rows: Iterable[Mapping[str, object]], source: str) -> int:
    """Load rate rows (keys date, from, to, rate); returns how many rows were created or changed."""
    return len(exchange_rates_upsert(rows=rows, source=source))


# --- Lookup and conversion ----------------------------------------------------------------------------


def rate_for(
    *, day: dt.date, from_currency: str, to_currency: str, max_age_days: int | None = None
) -> tuple[Decimal, dt.date | None]:
    """The rate for `day`: that date's, else the latest earlier within the window. (rate, rate date)."""
    from_currency, to_currency = from_currency.upper(), to_currency.upper()
    if from_currency == to_currency:
        return ONE, None
    window = max_age_days_setting() if max_age_days is None else max_age_days
    found = (
        ExchangeRate.objects.filter(
            from_currency=from_currency,
            to_currency=to_currency,
            date__lte=day,
            date__gte=day - dt.timedelta(days=window),
        )
        .order_by("-date")
        .values_list("rate", "date")
        .first()
    )
    if found is None:
        raise ExchangeRateError(_missing_message(day, from_currency, to_currency, window))
    return found[0], found[1]


def _missing_message(day: dt.date, from_currency: str, to_currency: str, window: int) -> str:
    return (
        f"No {from_currency}->{to_currency} exchange rate on or up to {window} days before {day}. "
        f"Load one with `manage.py load_exchange_rates FILE.csv` or POST /api/v1/exchange-rates."
    )


def convert(
    *, amount: Decimal, day: dt.date, from_currency: str, to_currency: str, max_age_days: int | None = None
) -> Conversion:
    rate, rate_date = rate_for(
        day=day, from_currency=from_currency, to_currency=to_currency, max_age_days=max_age_days
    )
    return Conversion((amount * rate).quantize(MONEY_QUANTUM), rate, rate_date)


class RateBook:
    """Rates for many (day, currency) lookups from one query: for selectors that convert per day.

    `convert` never raises: a figure that cannot be converted is reported as missing by the caller.
    """

    def __init__(self, *, currencies: Iterable[str], to_currency: str, start: dt.date, end: dt.date) -> None:
        self.to_currency = to_currency
        self.window = max_age_days_setting()
        wanted = sorted({currency for currency in currencies if currency != to_currency})
        self._rates: dict[str, list[tuple[dt.date, Decimal]]] = {currency: [] for currency in wanted}
        if wanted:
            rows = (
                ExchangeRate.objects.filter(
                    from_currency__in=wanted,
                    to_currency=to_currency,
                    date__gte=start - dt.timedelta(days=self.window),
                    date__lte=end,
                )
                .order_by("from_currency", "date")
                .values_list("from_currency", "date", "rate")
            )
            for currency, date, rate in rows:
                self._rates[currency].append((date, rate))

    def rate(self, *, day: dt.date, currency: str) -> tuple[Decimal, dt.date | None] | None:
        if currency == self.to_currency:
            return ONE, None
        best = None
        for date, rate in self._rates.get(currency, ()):
            if date > day:
                break
            best = (rate, date)
        if best is None or (day - best[1]).days > self.window:
            return None
        return best

    def convert(self, *, amount: Decimal, day: dt.date, currency: str) -> Conversion | None:
        found = self.rate(day=day, currency=currency)
        if found is None:
            return None
        return Conversion((amount * found[0]).quantize(MONEY_QUANTUM), found[0], found[1])


def allocated_costs_convert(
    *, account_id: int, days: Iterable[dt.date], to_currency: str | None = None
) -> int:
    """Fill the reporting-currency columns of AllocatedCost for (account, days) in one UPDATE per pass.

    Each row gets the rate of its own charge day (or the latest earlier one within the window) and
    records it. Rows whose currency has no usable rate keep NULL reporting figures, so a missing rate
    is visible (and `allocated_costs_missing_rates` names it), never converted at a guessed rate.
    Returns the number of rows converted.
    """
    to_currency = (to_currency or reporting_currency()).upper()
    days = sorted(set(days))
    if not days:
        return 0
    window = max_age_days_setting()
    rows = AllocatedCost.objects.filter(account_id=account_id, day__in=days)
    with transaction.atomic():
        # Clear first: a rate removed or a reporting currency changed must not leave old figures.
        rows.update(
            reporting_currency="",
            exchange_rate=None,
            billed_cost_reporting=None,
            effective_cost_reporting=None,
        )
        same = rows.filter(billing_currency=to_currency).update(
            reporting_currency=to_currency,
            exchange_rate=ONE,
            billed_cost_reporting=F("billed_cost"),
            effective_cost_reporting=F("effective_cost"),
        )
        latest_rate = Subquery(
            ExchangeRate.objects.filter(
                from_currency=OuterRef("billing_currency"),
                to_currency=to_currency,
                date__lte=OuterRef("day"),
                date__gte=ExpressionWrapper(
                    OuterRef("day") - dt.timedelta(days=window), output_field=DateField()
                ),
            )
            .order_by("-date")
            .values("rate")[:1]
        )
        other = rows.exclude(billing_currency=to_currency)
        other.update(exchange_rate=latest_rate)
        converted = other.filter(exchange_rate__isnull=False).update(
            reporting_currency=to_currency,
            billed_cost_reporting=F("billed_cost") * F("exchange_rate"),
            effective_cost_reporting=F("effective_cost") * F("exchange_rate"),
        )
    return same + converted


def allocated_costs_missing_rates(*, account_id: int, days: Iterable[dt.date]) -> list[tuple[dt.date, str]]:
    """(day, currency) pairs of AllocatedCost rows that could not be converted."""
    return list(
        AllocatedCost.objects.filter(account_id=account_id, day__in=list(days), exchange_rate__isnull=True)
        .values_list("day", "billing_currency")
        .distinct()
        .order_by("day", "billing_currency")
    )
