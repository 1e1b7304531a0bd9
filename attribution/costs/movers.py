"""Top movers: which team, model and service spend grew (or fell) most, week over week.

Compares the 7 days ending on the latest billed day with the 7 days before, from the daily rollup,
scoped to the user, in the reporting currency only (other currencies are never added in): two queries.
Each mover carries the explorer address that explains it (that dimension over both weeks, in 7-day
periods counted back from the latest day, so its two columns are the two weeks compared), and
its driver: what the change is mostly made of (for a team, the model and service whose spend moved
most in the same direction), so "which team grew most, and on what" reads off the Overview.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote_plus, urlencode

from django.db.models import Case, DecimalField, F, Max, Sum, When
from django.urls import reverse

from attribution.costs.explorer import NONE_LABEL
from attribution.models import DailyCost

ZERO = Decimal(0)
DIMENSIONS = {"team": "team__slug", "model": "model__slug", "service": "service_name"}


@dataclass(frozen=True)
class Mover:
    dimension: str
    key: str
    previous: Decimal
    current: Decimal
    explorer_url: str
    # The combination of the other two dimensions ("model · service" for a team) whose change, in the
    # mover's direction, is largest; "" when the mover did not move.
    driver: str = ""
    driver_change: Decimal = ZERO

    @property
    def change(self) -> Decimal:
        return self.current - self.previous

    @property
    def ratio(self) -> Decimal | None:
        return None if not self.previous else self.change / self.previous


@dataclass(frozen=True)
class Movers:
    week_end: dt.date | None
    currency: str
    by_dimension: dict[str, list[Mover]]
    # The explorer by team over the two weeks compared, one column each ("" without data).
    explorer_url: str = ""


def top_movers(*, user, currency: str, limit: int = 5) -> Movers:
    rows = DailyCost.objects.restrict(user).filter(billing_currency=currency)
    latest = rows.aggregate(latest=Max("day"))["latest"]
    if latest is None:
        return Movers(None, currency, {name: [] for name in DIMENSIONS})
    current_start = latest - dt.timedelta(days=6)
    previous_start = current_start - dt.timedelta(days=7)
    window = rows.filter(day__gte=previous_start, day__lte=latest)
    money = DecimalField(max_digits=30, decimal_places=10)
    # One read for all three dimensions: sums per (team, model, service) combination, folded per
    # dimension below (the combinations of two weeks are few; the rows behind them may be many).
    combos = (
        window.values(**{f"m_{name}": F(column) for name, column in DIMENSIONS.items()})
        .annotate(
            current=Sum(
                Case(When(day__gte=current_start, then=F("billed_cost")), default=0, output_field=money)
            ),
            previous=Sum(
                Case(When(day__lt=current_start, then=F("billed_cost")), default=0, output_field=money)
            ),
        )
        .order_by()
    )
    totals: dict[str, dict[str, list[Decimal]]] = {name: {} for name in DIMENSIONS}
    # Per dimension and key: the change of each combination of the other two dimensions (the driver).
    parts: dict[str, dict[str, dict[str, Decimal]]] = {name: {} for name in DIMENSIONS}
    for item in combos:
        previous, current = item["previous"] or ZERO, item["current"] or ZERO
        for name in DIMENSIONS:
            key = item[f"m_{name}"]
            if key in (None, ""):
                continue
            pair = totals[name].setdefault(str(key), [ZERO, ZERO])
            pair[0] += previous
            pair[1] += current
            others = " · ".join(
                str(item[f"m_{other}"]) if item[f"m_{other}"] not in (None, "") else NONE_LABEL
                for other in DIMENSIONS
                if other != name
            )
            by_others = parts[name].setdefault(str(key), {})
            by_others[others] = by_others.get(others, ZERO) + current - previous
    result: dict[str, list[Mover]] = {}
    explorer = reverse("attribution:explorer")
    weeks = {
        "start": previous_start.isoformat(),
        "end": latest.isoformat(),
        "granularity": "week_to_end",
        "currency": currency,
    }
    for name, by_key in totals.items():
        # Ranked first, so only the movers shown get an explorer address (there may be hundreds of
        # services; building a URL for each cost the overview more than reading them).
        ranked = sorted(by_key.items(), key=lambda item: (-abs(item[1][1] - item[1][0]), item[0]))[:limit]
        # The weeks, currency and grouping are the same for every mover of this dimension: encoded
        # once, so each URL encodes only its key (the same text as urlencode of the whole query).
        shared = explorer + "?" + urlencode({**weeks, "group_by": "service" if name != "service" else "team"})
        movers = []
        for key, (previous, current) in ranked:
            driver, driver_change = _driver(parts[name][key], change=current - previous)
            movers.append(
                Mover(
                    dimension=name,
                    key=key,
                    previous=previous,
                    current=current,
                    explorer_url=f"{shared}&f_{name}={quote_plus(key)}",
                    driver=driver,
                    driver_change=driver_change,
                )
            )
        result[name] = movers
    return Movers(latest, currency, result, explorer + "?" + urlencode({**weeks, "group_by": "team"}))


def _driver(changes: dict[str, Decimal], *, change: Decimal) -> tuple[str, Decimal]:
    """The part that moved most in the direction of `change` (ties: first by name), or ("", 0)."""
    if not change:
        return "", ZERO
    sign = 1 if change > 0 else -1
    label, amount = min(changes.items(), key=lambda item: (-sign * item[1], item[0]))
    return (label, amount) if sign * amount > 0 else ("", ZERO)
