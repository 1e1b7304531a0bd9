"""Demo governance on top of the demo company's spend: a budget per team (one near its limit on
forecast, one over on forecast, one over and blocked, with a blocked quota), a usage spike that is
an anomaly, an acknowledged and an open alert, and the event history that evaluation leaves.
Idempotent enough to re-run: it replaces the budgets it made (named "… (demo)")."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db.models import Max, Sum
from django.utils import timezone

from attribution.estimates.services import estimates_refresh
from attribution.models import Deployment, Team, UsageRecord
from attribution.usage.services import usage_records_upsert
from governance.alert_services import alert_acknowledge
from governance.anomalies import anomalies_detect
from governance.budget_services import BudgetData, ThresholdData, budget_create
from governance.enforcement import budgets_evaluate
from governance.forecast_services import budget_forecast_refresh
from governance.models import Alert, Budget, Quota
from governance.periods import period_containing
from governance.spend import SpendScope, scope_spend_daily

CENT = Decimal("0.01")


class Command(BaseCommand):
    help = "Budgets, quotas, an anomaly and alerts for the demo company (run after its spend is loaded)."

    def handle(self, *args, **options) -> None:
        admin = get_user_model().objects.filter(username="admin").first()
        now = timezone.now()
        period = period_containing(period="month", at=now)
        Budget.objects.filter(name__endswith="(demo)").delete()
        teams = list(Team.objects.order_by("name"))
        if len(teams) < 3:
            self.stderr.write("The demo needs at least three teams (run demo_seed first).")
            return
        spike_day = self._usage_spike(team=teams[-1], now=now)
        plans = []
        for index, team in enumerate(teams):
            history = scope_spend_daily(
                scope=SpendScope(team_id=team.pk), start=period.start - dt.timedelta(days=60), end=period.end,
                currency="USD",
            )  # fmt: skip
            spent = sum((amount for day, amount in history.series(period.start, period.end)), Decimal("0"))
            daily = history.total / max(1, (now.date() - (period.start - dt.timedelta(days=60))).days)
            expected = max(spent + daily * (period.end - now.date()).days, Decimal("100"))
            plans.append((index, team, spent, expected))
        for index, team, spent, expected in plans:
            if index == 0:  # near its limit: the month's spend expected at 92 % of it, notified at 80 %
                # Sized on the month, not on what is spent so far: early in a month "92 % used" made
                # a budget of a few days' spend, forecast at many times it (a blown budget, not a
                # near one).
                amount, thresholds = (
                    max(expected / Decimal("0.92"), Decimal("10")),
                    [
                        ThresholdData(percent=Decimal("80"), basis="forecast", action="notify"),
                        ThresholdData(percent=Decimal("100"), action="block"),
                    ],
                )
            elif index == 1:  # over on forecast: throttled by half before actual spend gets there
                amount, thresholds = max(spent * Decimal("1.1"), expected * Decimal("0.8")), [
                    ThresholdData(percent=Decimal("100"), basis="forecast", action="throttle",
                                  throttle_share=Decimal("0.5")),
                    ThresholdData(percent=Decimal("100"), action="block"),
                ]  # fmt: skip
            elif index == 2:  # over on forecast and blocked, and its quota with it
                # Sized on the month's expected spend, the basis the forecast is on (as the
                # near-limit one): the month is forecast at ~125 % of it and blocked for that. Sized
                # at 90 % of what was spent so far, on the 3rd it was a budget of two days' spend
                # for a team forecast at ~15 times it.
                amount, thresholds = (
                    max(expected * Decimal("0.8"), Decimal("1")),
                    [ThresholdData(percent=Decimal("100"), basis="forecast", action="block")],
                )
                Quota.objects.update_or_create(
                    team=team, model=None, gateway_id=None, metric="tokens", window="minute",
                    defaults={"limit": 200_000},
                )  # fmt: skip
            else:
                amount, thresholds = (
                    expected * Decimal("1.5"),
                    [ThresholdData(percent=Decimal("80"), action="notify")],
                )
            budget = budget_create(
                actor=admin,
                data=BudgetData(
                    name=f"{team.name} monthly (demo)", amount=amount.quantize(CENT), team_id=team.pk,
                    timezone="UTC", thresholds=thresholds,
                ),
            )  # fmt: skip
            budget_forecast_refresh(budget_id=budget.pk, now=now)
        evaluations = budgets_evaluate(now=now)
        anomalies = []
        days = {now.date() - dt.timedelta(days=offset) for offset in range(2)} | {spike_day}
        for day in sorted(item for item in days if item is not None):
            anomalies += anomalies_detect(day=day)
        notified = (
            Alert.objects.filter(kind="budget_threshold", budget__team=teams[0], acknowledged_at__isnull=True)
            .order_by("created_at")
            .first()
        )
        if notified is not None and admin is not None:
            alert_acknowledge(alert=notified, actor=admin)
        self.stdout.write(
            f"Budgets for {len(plans)} teams; actions applied: {sum(len(e.applied) for e in evaluations)}; "
            f"anomalies: {len(anomalies)}; acknowledged alert: {notified.pk if notified else 'none'}."
        )

    def _usage_spike(self, *, team: Team, now: dt.datetime) -> dt.date | None:
        """On the latest day with gateway usage (today in production, the demo's last day of usage
        otherwise), one team's traffic on one deployment runs at five times its usual day. Returns
        that day. On a day with no other usage yet (the demo's today), the spike alone was
        four days of one deployment, under the team's usual day: no anomaly of the team."""
        usual = (
            UsageRecord.objects.filter(team=team, bucket_start__gte=now - dt.timedelta(days=14))
            .values("deployment_id", "model_id")
            .annotate(tokens=Sum("input_tokens"), out=Sum("output_tokens"), requests=Sum("requests"))
            .order_by("-tokens")
            .first()
        )
        if usual is None:
            return None
        deployment = Deployment.objects.select_related("model").get(pk=usual["deployment_id"])
        latest = UsageRecord.objects.filter(bucket_start__lte=now).aggregate(latest=Max("bucket_start"))[
            "latest"
        ]
        hour = min(latest or now, now).replace(minute=0, second=0, microsecond=0)
        per_day = {key: int(usual[key] or 0) // 14 for key in ("tokens", "out", "requests")}
        usage_records_upsert(
            reporter="demo-spike",
            batch_id=f"demo-spike:{hour:%Y%m%d%H}",
            records=[
                {
                    "bucket_start": hour.isoformat(), "bucket_seconds": 3600, "deployment": deployment.slug,
                    "team": team.slug, "model": deployment.model.slug, "requests": per_day["requests"] * 4,
                    "input_tokens": per_day["tokens"] * 4, "output_tokens": per_day["out"] * 4,
                }
            ],
        )  # fmt: skip
        estimates_refresh(days=[hour.date()])
        return hour.date()
