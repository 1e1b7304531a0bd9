"""Spend estimated from usage between bills, and its reconciliation when the bill lands.

Bills arrive hours to days late; gateway usage within seconds. For every day whose bill has not
landed yet (no DailyCost row for the deployment's account on that day), spend is estimated per
day × deployment × team × model from gateway usage:

1. `price_card`: the deployment's price card valid on that day: $/1M input and output tokens and
   $/1k requests per usage row, plus $/hour × hours. Hours are capacity hours for instances (every
   hour of the day the instance existed, up to now), hours with usage for managed deployments; the
   hourly cost is split over the day's usage rows in proportion to tokens.
2. `unit_cost`: for deployments without a card, the deployment's latest UnitCost before that day
   (at most UNIT_COST_LOOKBACK_DAYS old) scaled by usage: effective cost × usage tokens / unit-cost
   tokens (requests when the unit cost day had no tokens). The UnitCost is on the effective
   (amortized) basis. An instance without an hourly card is billed for its hours, not its tokens:
   it gets the latest UnitCost's effective cost per capacity hour × its capacity hours of the day
   (`_from_capacity_rate`), before any per-token reference card.

Either figure is then multiplied by the deployment's calibration factor for that basis, learned
from recent true-ups (attribution/estimates/calibration.py); `uncalibrated_cost` keeps the figure
before it, so accuracy is shown both ways.

When the bill for a day lands, the estimates of that day are reconciled, never deleted: each row
records `billed_cost` (the bill's EffectiveCost of the same cell: the basis the unit cost was
computed on), `error` = estimated − billed and `reconciled_at`. Billed cells nobody estimated become
rows with estimated 0 and basis `unestimated`, so per deployment and day the rows add up to the bill
and the accuracy figures (MAPE, bias) compare like with like. Reconciling again (after allocation
rewrote AllocatedCost, or a restated bill) recomputes the billed side; it is idempotent.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone

from attribution.choices import PricingMode
from attribution.estimates.calibration import calibration_factors_current, calibration_learn
from attribution.models import (
    AllocatedCost,
    CloudAccount,
    DailyCost,
    Deployment,
    PriceCard,
    PriceUnit,
    SpendEstimate,
    UnitCost,
    UsageRecord,
)

BASIS_UNIT_COST = "unit_cost"
BASIS_PRICE_CARD = "price_card"
# A billed cell that had no estimate (e.g. cost of a team the gateways never reported).
BASIS_UNESTIMATED = "unestimated"

# An older unit cost says little about today's; past this a price card (if any) is the better guess.
UNIT_COST_LOOKBACK_DAYS = 31
MONEY_QUANTUM = Decimal("1e-10")
MILLION = Decimal(1_000_000)
THOUSAND = Decimal(1_000)
UTC = dt.UTC


@dataclass
class UsageCell:
    team_id: int | None
    model_id: int
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class RefreshResult:
    estimates_written: int = 0
    days_estimated: list[str] = field(default_factory=list)
    # (day, deployment slug) pairs with usage but no unit cost and no price card: not estimated.
    without_basis: list[tuple[str, str]] = field(default_factory=list)
    reconciled: int = 0

    def as_dict(self) -> dict:
        return {
            "estimates_written": self.estimates_written,
            "days_estimated": self.days_estimated,
            "without_basis": [list(pair) for pair in self.without_basis],
            "reconciled": self.reconciled,
        }


def _money(value: Decimal) -> Decimal:
    return value.quantize(MONEY_QUANTUM)


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=UTC)
    return start, start + dt.timedelta(days=1)


# --- What has landed ------------------------------------------------------------------------------


@dataclass
class _Deployments:
    """Deployments (a small control-plane table) and which of them have a bill per day."""

    by_id: dict[int, dict]
    landed_accounts: dict[dt.date, set[int]]
    landed_providers: dict[dt.date, set[str]]

    def bill_landed(self, day: dt.date, deployment_id: int) -> bool:
        deployment = self.by_id[deployment_id]
        if deployment["account_id"] is not None:
            return deployment["account_id"] in self.landed_accounts.get(day, ())
        # A deployment not tied to an account is billed once its provider's bill for the day lands.
        return deployment["provider"] in self.landed_providers.get(day, ())


def _deployments_load(days: list[dt.date]) -> _Deployments:
    by_id = {
        row["id"]: row
        for row in Deployment.objects.values(
            "id", "slug", "account_id", "provider", "pricing_mode", "model_id", "created_at"
        )
    }
    landed_accounts: dict[dt.date, set[int]] = defaultdict(set)
    landed_providers: dict[dt.date, set[str]] = defaultdict(set)
    for row in DailyCost.objects.filter(day__in=days).values("day", "account_id", "provider").distinct():
        landed_accounts[row["day"]].add(row["account_id"])
        landed_providers[row["day"]].add(row["provider"])
    return _Deployments(by_id, landed_accounts, landed_providers)


# --- Usage ------------------------------------------------------------------------------------------


def _usage_load(
    days: list[dt.date],
) -> tuple[dict[tuple[dt.date, int], list[UsageCell]], dict[tuple[dt.date, int], int]]:
    """Usage per (day, deployment) from the minute buckets, and the hours that had any requests.

    Read from UsageRecord rather than the rollups: it is the freshest source, and an estimate of
    today must not wait for the next rollup.
    """
    first, _ = _day_bounds(days[0])
    _, last = _day_bounds(days[-1])
    wanted = set(days)
    in_window = UsageRecord.objects.filter(bucket_start__gte=first, bucket_start__lt=last)
    cells: dict[tuple[dt.date, int], list[UsageCell]] = defaultdict(list)
    rows = (
        in_window.annotate(usage_day=TruncDate("bucket_start", tzinfo=UTC))
        .values("usage_day", "deployment_id", "team_id", "model_id")
        .annotate(
            requests_sum=Sum("requests"), input_sum=Sum("input_tokens"), output_sum=Sum("output_tokens")
        )
        .order_by("usage_day", "deployment_id", "team_id", "model_id")
    )
    for row in rows:
        if row["usage_day"] not in wanted:
            continue
        cells[(row["usage_day"], row["deployment_id"])].append(
            UsageCell(
                team_id=row["team_id"],
                model_id=row["model_id"],
                requests=row["requests_sum"] or 0,
                input_tokens=row["input_sum"] or 0,
                output_tokens=row["output_sum"] or 0,
            )
        )
    hours = {
        (row["usage_day"], row["deployment_id"]): row["hours"]
        for row in in_window.filter(requests__gt=0)
        .annotate(usage_day=TruncDate("bucket_start", tzinfo=UTC))
        .values("usage_day", "deployment_id")
        .annotate(hours=Count(TruncHour("bucket_start", tzinfo=UTC), distinct=True))
        .order_by()
    }
    return cells, hours


# --- Bases ------------------------------------------------------------------------------------------


def _latest_unit_costs(
    day: dt.date, deployment_ids: set[int], *, through: dt.date | None = None
) -> dict[tuple[int, int], UnitCost]:
    """The latest UnitCost before `day` (and not after `through`) per (deployment, model), within
    the lookback."""
    if not deployment_ids:
        return {}
    last = day - dt.timedelta(days=1) if through is None else min(through, day - dt.timedelta(days=1))
    rows = (
        UnitCost.objects.filter(
            deployment_id__in=deployment_ids,
            day__lte=last,
            day__gte=day - dt.timedelta(days=UNIT_COST_LOOKBACK_DAYS),
        )
        .order_by("deployment_id", "model_id", "-day", "currency")
        .distinct("deployment_id", "model_id")
    )
    return {(row.deployment_id, row.model_id): row for row in rows}


def _price_cards(day: dt.date, deployment_ids: set[int]) -> dict[int, dict[str, PriceCard]]:
    """The price valid on `day` per deployment and unit (the card with the latest valid_from)."""
    cards: dict[int, dict[str, PriceCard]] = defaultdict(dict)
    rows = (
        PriceCard.objects.filter(valid_from__lte=day)
        .filter(Q(deployment_id__in=deployment_ids) | Q(unit=PriceUnit.HOUR))
        .order_by("deployment_id", "unit", "-valid_from")
        .distinct("deployment_id", "unit")
    )
    for card in rows:
        cards[card.deployment_id][card.unit] = card
    return cards


@dataclass
class _Estimate:
    team_id: int | None
    model_id: int
    currency: str
    amount: Decimal
    basis: str
    details: dict


def _from_unit_cost(cells: list[UsageCell], unit_costs: dict, deployment_id: int) -> list[_Estimate] | None:
    """Usage priced at the deployment's latest unit cost (see attribution/costs/services.py).

    Tokens are priced with the per-1M input and output token costs (which already carry the
    output:input price ratio); a unit cost without tokens falls back to the per-1k-requests cost.
    """
    estimates = []
    for cell in cells:
        unit = unit_costs.get((deployment_id, cell.model_id))
        if unit is None:
            return None
        details = {
            "unit_cost_id": unit.pk,
            "unit_cost_day": unit.day.isoformat(),
            "requests": cell.requests,
            "input_tokens": cell.input_tokens,
            "output_tokens": cell.output_tokens,
        }
        if unit.cost_per_1m_input_tokens is not None and unit.cost_per_1m_output_tokens is not None:
            amount = (
                unit.cost_per_1m_input_tokens * cell.input_tokens
                + unit.cost_per_1m_output_tokens * cell.output_tokens
            ) / MILLION
            details.update(
                measure="tokens",
                cost_per_1m_input_tokens=str(unit.cost_per_1m_input_tokens),
                cost_per_1m_output_tokens=str(unit.cost_per_1m_output_tokens),
            )
        elif unit.cost_per_1k_requests is not None:
            amount = unit.cost_per_1k_requests * cell.requests / THOUSAND
            details.update(measure="requests", cost_per_1k_requests=str(unit.cost_per_1k_requests))
        else:
            return None
        estimates.append(
            _Estimate(cell.team_id, cell.model_id, unit.currency, _money(amount), BASIS_UNIT_COST, details)
        )
    return estimates


def _from_capacity_rate(
    cells: list[UsageCell],
    unit_costs: dict,
    deployment_id: int,
    deployment: dict,
    day: dt.date,
    now: dt.datetime,
) -> list[_Estimate] | None:
    """An instance without an hourly card, priced at its own billed cost per capacity hour.

    An instance bills for its hours, whatever it served, and the bill it is compared with is the
    effective (amortized) cost: a savings plan or commitment shows there at its discounted rate,
    not at any list price. The latest billed day's effective cost per capacity hour (UnitCost,
    summed over the models it served) is that rate; today's capacity hours times it is the
    estimate, split over the day's usage by tokens like an hourly card. Per-token reference cards
    say what the tokens would cost on a managed API, not what this instance bills.
    """
    latest = [unit for (d, _), unit in unit_costs.items() if d == deployment_id]
    if not latest:
        return None
    rate_day = max(unit.day for unit in latest)
    same_day = [unit for unit in latest if unit.day == rate_day]
    currencies = {unit.currency for unit in same_day}
    if len(currencies) != 1:
        return None  # costs in two currencies cannot be added into one rate
    rate_start, rate_end = _day_bounds(rate_day)
    if deployment["created_at"] >= rate_end:
        # Registered after its bill says it ran (the demo, or any deployment registered after the
        # fact): the bill is the evidence that it existed for that whole day and since.
        deployment = {**deployment, "created_at": rate_start}
    rate_hours = _capacity_hours(deployment, rate_day, rate_end)
    if not rate_hours:
        return None
    billed = sum((unit.effective_cost for unit in same_day), Decimal(0))
    rate = billed / rate_hours
    hours = _capacity_hours(deployment, day, now)
    total = rate * hours
    if not cells:
        if not total:
            return None
        cells = [UsageCell(team_id=None, model_id=deployment["model_id"])]
    total_tokens = sum(cell.tokens for cell in cells)
    total_requests = sum(cell.requests for cell in cells)
    (currency,) = currencies
    estimates = []
    for cell in cells:
        if total_tokens:
            share = Decimal(cell.tokens) / total_tokens
        elif total_requests:
            share = Decimal(cell.requests) / total_requests
        else:
            share = Decimal(1) / len(cells)
        details = {
            "measure": "capacity_hours",
            "unit_cost_day": rate_day.isoformat(),
            "unit_cost_ids": sorted(unit.pk for unit in same_day),
            "cost_per_capacity_hour": str(rate.quantize(MONEY_QUANTUM)),
            "hours": str(hours),
            "hours_kind": "capacity",
            "hourly_share": str(share.quantize(Decimal("1e-12"))),
            "requests": cell.requests,
            "input_tokens": cell.input_tokens,
            "output_tokens": cell.output_tokens,
        }
        estimates.append(
            _Estimate(cell.team_id, cell.model_id, currency, _money(total * share), BASIS_UNIT_COST, details)
        )
    return estimates


def _capacity_hours(deployment: dict, day: dt.date, now: dt.datetime) -> Decimal:
    """Hours of the day the instance existed, up to now: an instance bills whether used or not."""
    start, end = _day_bounds(day)
    start = max(start, deployment["created_at"])
    end = min(end, now)
    if end <= start:
        return Decimal(0)
    return (Decimal((end - start).total_seconds()) / 3600).quantize(Decimal("0.0001"))


def _from_price_card(
    cells: list[UsageCell],
    cards: dict[str, PriceCard],
    deployment: dict,
    day: dt.date,
    now: dt.datetime,
    hours_used: int,
) -> list[_Estimate] | None:
    if not cards:
        return None
    is_instance = deployment["pricing_mode"] != PricingMode.MANAGED_PER_TOKEN
    hour_card = cards.get(PriceUnit.HOUR)
    hourly_total = Decimal(0)
    hours = Decimal(0)
    hours_kind = ""
    if hour_card is not None:
        if is_instance:
            hours, hours_kind = _capacity_hours(deployment, day, now), "capacity"
        else:
            hours, hours_kind = Decimal(hours_used), "with_usage"
        hourly_total = hour_card.price * hours
    if not cells:
        if not hourly_total:
            return None
        # An instance nobody used still bills for its hours: idle, carried by no team.
        cells = [UsageCell(team_id=None, model_id=deployment["model_id"])]
    total_tokens = sum(cell.tokens for cell in cells)
    total_requests = sum(cell.requests for cell in cells)
    estimates = []
    for cell in cells:
        if total_tokens:
            share = Decimal(cell.tokens) / total_tokens
        elif total_requests:
            share = Decimal(cell.requests) / total_requests
        else:
            share = Decimal(1) / len(cells)
        amount = hourly_total * share
        details: dict = {
            "requests": cell.requests,
            "input_tokens": cell.input_tokens,
            "output_tokens": cell.output_tokens,
        }
        currency = hour_card.currency if hour_card is not None else ""
        for unit, used, per in (
            (PriceUnit.INPUT_1M, cell.input_tokens, MILLION),
            (PriceUnit.OUTPUT_1M, cell.output_tokens, MILLION),
            (PriceUnit.REQUEST_1K, cell.requests, THOUSAND),
        ):
            card = cards.get(unit)
            if card is None:
                continue
            currency = currency or card.currency
            if card.currency != currency:
                continue  # a card in another currency cannot be added to this one
            amount += card.price * used / per
            details[f"price_{unit}"] = str(card.price)
        if hour_card is not None:
            details.update(
                {
                    "price_hour": str(hour_card.price),
                    "hours": str(hours),
                    "hours_kind": hours_kind,
                    "hourly_share": str(share.quantize(Decimal("1e-12"))),
                }
            )
        if not currency:
            return None
        estimates.append(
            _Estimate(cell.team_id, cell.model_id, currency, _money(amount), BASIS_PRICE_CARD, details)
        )
    return estimates


# --- Refresh ----------------------------------------------------------------------------------------


def estimates_refresh(
    *, days: Iterable[dt.date], now: dt.datetime | None = None, replay_known_through: dt.date | None = None
) -> RefreshResult:
    """Re-estimate every given day whose bill has not landed; reconcile the days whose bill has.

    Idempotent: unreconciled estimates of a refreshed (day, deployment) are replaced as a whole in
    one transaction, so a repeated or concurrent run leaves one consistent set.

    `replay_known_through` (attribution/estimates/replay.py) re-lives a past moment: the given days
    are estimated as if their bills had not landed, from unit costs of days up to that date only,
    and nothing is reconciled (the replay lands each bill at its own time).
    """
    replaying = replay_known_through is not None
    days = sorted(set(days))
    result = RefreshResult()
    if not days:
        return result
    now = now or timezone.now()
    deployments = _deployments_load(days)
    usage, hours = _usage_load(days)
    # The factors in force when the estimates are made (learned from bills landed before `now`).
    factors = calibration_factors_current(deployment_ids=deployments.by_id, at=now)

    fresh: list[SpendEstimate] = []
    open_pairs: dict[dt.date, set[int]] = defaultdict(set)
    for day in days:
        if day > now.date():
            continue
        candidates = {deployment_id for (usage_day, deployment_id) in usage if usage_day == day}
        cards_by_deployment = _price_cards(day, candidates)
        # Instances with an hourly price bill for their hours even without usage.
        for deployment_id, cards in cards_by_deployment.items():
            deployment = deployments.by_id.get(deployment_id)
            if (
                deployment is not None
                and PriceUnit.HOUR in cards
                and deployment["pricing_mode"] != PricingMode.MANAGED_PER_TOKEN
                and deployment["created_at"] < _day_bounds(day)[1]
            ):
                candidates.add(deployment_id)
        open_ids = {
            d
            for d in candidates
            if d in deployments.by_id and (replaying or not deployments.bill_landed(day, d))
        }
        if not open_ids:
            continue
        open_pairs[day] = open_ids
        result.days_estimated.append(day.isoformat())
        unit_costs = _latest_unit_costs(day, open_ids, through=replay_known_through)
        for deployment_id in sorted(open_ids):
            deployment = deployments.by_id[deployment_id]
            cells = usage.get((day, deployment_id), [])
            # A price card valid on the day is the first basis: it prices today's usage at today's
            # price, where a unit cost is days old and, for an instance, wrongly scales a per-hour
            # bill with usage. What the card does not know (taxes, discounts, a stale price) is the
            # steady bias that calibration corrects. The measured unit cost serves deployments
            # without a card.
            cards = cards_by_deployment.get(deployment_id, {})
            estimates = None
            if deployment["pricing_mode"] != PricingMode.MANAGED_PER_TOKEN and PriceUnit.HOUR not in cards:
                # An instance bills by the hour: without an hourly card, its own billed rate per
                # capacity hour beats per-token reference prices, which priced a committed p5
                # pool at 6x its bill and taught calibration nothing (a ratio outside 0.5-2).
                estimates = _from_capacity_rate(cells, unit_costs, deployment_id, deployment, day, now)
            if estimates is None:
                estimates = _from_price_card(
                    cells, cards, deployment, day, now, hours.get((day, deployment_id), 0)
                )
            if estimates is None and cells:
                estimates = _from_unit_cost(cells, unit_costs, deployment_id)
            if estimates is None:
                result.without_basis.append((day.isoformat(), deployment["slug"]))
                continue
            merged: dict[tuple, _Estimate] = {}
            for estimate in estimates:
                key = (estimate.team_id, estimate.model_id, estimate.currency)
                if key in merged:  # two usage rows can only collide on currency; add them up
                    merged[key].amount += estimate.amount
                else:
                    merged[key] = estimate
            for estimate in merged.values():
                calibration = factors.get((deployment_id, estimate.basis, estimate.currency))
                details = dict(estimate.details)
                if calibration is not None:
                    details["calibration_id"] = calibration.calibration_id
                fresh.append(
                    SpendEstimate(
                        day=day,
                        deployment_id=deployment_id,
                        team_id=estimate.team_id,
                        model_id=estimate.model_id,
                        currency=estimate.currency,
                        estimated_cost=_money(estimate.amount * calibration.factor)
                        if calibration is not None
                        else estimate.amount,
                        uncalibrated_cost=estimate.amount,
                        calibration_factor=calibration.factor if calibration is not None else None,
                        basis=estimate.basis,
                        basis_details=details,
                    )
                )

    with transaction.atomic():
        for day in days:
            # Unreconciled estimates of deployments whose bill has not landed are rebuilt; stale
            # ones (usage deleted, deployment without basis now) disappear with them.
            stale = SpendEstimate.objects.filter(day=day, reconciled_at__isnull=True)
            if not replaying:
                landed_ids = [d for d in deployments.by_id if deployments.bill_landed(day, d)]
                stale = stale.exclude(deployment_id__in=landed_ids)
            stale.delete()
        SpendEstimate.objects.bulk_create(fresh, batch_size=2000)
    result.estimates_written = len(fresh)
    if not replaying:
        result.reconciled = estimates_reconcile(days=days, now=now)
    return result


# --- Reconcile --------------------------------------------------------------------------------------


def estimates_reconcile(
    *, days: Iterable[dt.date], account_id: int | None = None, now: dt.datetime | None = None
) -> int:
    """Record the billed side of the estimates of (days[, account]) whose bill has landed.

    Billed per cell comes from AllocatedCost where the account-day has been allocated (teams then
    carry their share of shared pools), else from the DailyCost rollup. Returns rows reconciled.
    """
    days = sorted(set(days))
    if not days:
        return 0
    now = now or timezone.now()
    deployments = _deployments_load(days)
    estimates = SpendEstimate.objects.filter(day__in=days)
    if account_id is not None:
        provider = CloudAccount.objects.filter(pk=account_id).values_list("provider", flat=True).first() or ""
        estimates = estimates.filter(
            Q(deployment__account_id=account_id)
            | Q(deployment__account__isnull=True, deployment__provider=provider)
        )
    by_pair: dict[tuple[dt.date, int], list[SpendEstimate]] = defaultdict(list)
    for estimate in estimates.order_by("id"):
        if deployments.bill_landed(estimate.day, estimate.deployment_id):
            by_pair[(estimate.day, estimate.deployment_id)].append(estimate)
    # On days the estimator was live (it estimated something), a billed deployment it did not
    # estimate at all is its blind spot: its bill becomes `unestimated` rows, so the share of
    # dollars with no estimate is measured. Days billed before estimates existed are left alone.
    live_days = set(
        SpendEstimate.objects.filter(day__in=days)
        .exclude(basis=BASIS_UNESTIMATED)
        .values_list("day", flat=True)
    )
    billed_pairs = DailyCost.objects.filter(day__in=live_days, deployment__isnull=False)
    if account_id is not None:
        billed_pairs = billed_pairs.filter(account_id=account_id)
    for day, deployment_id in billed_pairs.values_list("day", "deployment_id").distinct():
        by_pair.setdefault((day, deployment_id), [])
    if not by_pair:
        return 0
    billed = _billed_cells(
        days=sorted({day for day, _ in by_pair}),
        deployment_ids={d for _, d in by_pair},
        deployments=deployments,
    )

    to_update: list[SpendEstimate] = []
    to_create: list[SpendEstimate] = []
    to_delete: list[int] = []
    for (day, deployment_id), rows in by_pair.items():
        cells = dict(billed.get((day, deployment_id), {}))
        for estimate in rows:
            amount = cells.pop((estimate.team_id, estimate.model_id, estimate.currency), Decimal(0))
            if estimate.basis == BASIS_UNESTIMATED and not amount:
                to_delete.append(estimate.pk)  # the cell it stood for is no longer billed
                continue
            estimate.billed_cost = _money(amount)
            estimate.error = _money(estimate.estimated_cost - amount)
            estimate.reconciled_at = estimate.reconciled_at or now
            to_update.append(estimate)
        for (team_id, model_id, currency), amount in cells.items():
            if not amount:
                continue
            to_create.append(
                SpendEstimate(
                    day=day,
                    deployment_id=deployment_id,
                    team_id=team_id,
                    model_id=model_id,
                    currency=currency,
                    estimated_cost=Decimal(0),
                    uncalibrated_cost=Decimal(0),
                    basis=BASIS_UNESTIMATED,
                    basis_details={"reason": "billed, but no usage or estimate for this cell"},
                    billed_cost=_money(amount),
                    error=_money(-amount),
                    reconciled_at=now,
                )
            )
    with transaction.atomic():
        SpendEstimate.objects.filter(pk__in=to_delete).delete()
        SpendEstimate.objects.bulk_update(
            to_update, ["billed_cost", "error", "reconciled_at"], batch_size=2000
        )
        SpendEstimate.objects.bulk_create(to_create, batch_size=2000)
    # Every true-up teaches the deployments it touched their calibration factor.
    calibration_learn(deployment_ids={deployment_id for _, deployment_id in by_pair}, now=now)
    return len(to_update) + len(to_create)


def _billed_cells(
    *, days: list[dt.date], deployment_ids: set[int], deployments: _Deployments
) -> dict[tuple[dt.date, int], dict[tuple[int | None, int, str], Decimal]]:
    allocated_account_days = set(
        AllocatedCost.objects.filter(day__in=days, deployment_id__in=deployment_ids)
        .values_list("day", "account_id")
        .distinct()
    )
    cells: dict[tuple[dt.date, int], dict[tuple[int | None, int, str], Decimal]] = defaultdict(
        lambda: defaultdict(Decimal)
    )
    columns = ("day", "account_id", "deployment_id", "team_id", "model_id", "billing_currency")
    sources = (
        (AllocatedCost.objects, lambda key: key in allocated_account_days),
        (DailyCost.objects, lambda key: key not in allocated_account_days),
    )
    for manager, wanted in sources:
        rows = (
            manager.filter(day__in=days, deployment_id__in=deployment_ids)
            .values(*columns)
            .annotate(amount=Sum("effective_cost"))
            .order_by()
        )
        for row in rows:
            if not wanted((row["day"], row["account_id"])):
                continue
            model_id = row["model_id"] or deployments.by_id[row["deployment_id"]]["model_id"]
            key = (row["team_id"], model_id, row["billing_currency"])
            cells[(row["day"], row["deployment_id"])][key] += row["amount"] or 0
    return cells
