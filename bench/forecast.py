"""Period-end forecast accuracy against the naive run rate, on generated daily spend series and on
the demo company's data.

    python bench/forecast.py [--series 12] [--seed 11] [--demo-days 150] [--demo-seed 42] [--verbose]

Series families (each `--series` series, 150 days of history then a 30-day month):
trend (linear growth, noise), weekly (weekday/weekend pattern, noise), noisy (level with heavy
noise), step (a level change 20-60 days before the month), and mixed (trend + weekly + a step).
Forecasts of the month's total are made at day 10 and day 20 (days 1-10 / 1-20 known) by
governance.forecasting.forecast_total, the code budgets use, and by the naive run rate
(spend so far / days so far x days in the month) that the clouds' budget consoles show.

Figures: MAPE of both, their ratio (target <= 0.8) and the share of actual totals inside the
forecast's 80 % interval (target between 0.7 and 0.9), compared to the cent. `--verbose` prints
every forecast: its error and interval as a share of the remaining days' actual spend, and whether
the actual total fell inside. Needs no database. Exit status 0.

Demo data (`--demo-days 0` skips it): the demo generator (attribution/demo, what `make demo`
ingests) writes its AWS CUR 2.0, Google Cloud and Azure exports for `--demo-days` days ending
2026-11-30 into a temporary folder; the project's own parsers (attribution.ingest) read them back
and the current version of each (account, billing period) gives daily EffectiveCost series: the
company, each provider, and each team's directly tagged spend (shared GPU pools are split between
teams by gateway usage in the app, so a team's series here is its tagged spend only). Every
complete month with at least three weeks of history before it is forecast at day 10 and day 20, as
above; the same figures are printed with a `demo_` prefix.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from calendar import monthrange
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
from _common import report  # noqa: E402

from governance.forecasting import forecast_total  # noqa: E402

HISTORY, MONTH = 150, 30
# The generated month is a 30-day calendar month (November 2026), so the forecaster gets real dates;
# the generated series have no calendar charges and none may be found in them.
GENERATED_MONTH = dt.date(2026, 11, 1)
GENERATED_FIRST_DAY = GENERATED_MONTH - dt.timedelta(days=HISTORY)
WEEKLY = np.array([1.0, 1.08, 1.05, 1.02, 0.97, 0.45, 0.4])


def _series(family: str, rng: np.random.Generator) -> np.ndarray:
    days = np.arange(HISTORY + MONTH)
    level = rng.uniform(200, 2000)
    noise = rng.normal(0, 1, size=days.size)
    if family == "trend":
        slope = level * rng.uniform(0.002, 0.01)
        values = level + slope * days + noise * level * 0.05
    elif family == "weekly":
        values = level * WEEKLY[days % 7] + noise * level * 0.05
    elif family == "noisy":
        values = level + noise * level * 0.2
    elif family == "step":
        step_day = HISTORY - rng.integers(20, 60)
        values = level * np.where(days >= step_day, rng.uniform(1.3, 2.0), 1.0) + noise * level * 0.05
    else:  # mixed
        step_day = HISTORY - rng.integers(20, 60)
        slope = level * rng.uniform(0.001, 0.006)
        values = (level + slope * days) * WEEKLY[days % 7] * np.where(days >= step_day, 1.4, 1.0)
        values = values + noise * level * 0.06
    return np.clip(values, 0, None)


DEMO_END = dt.date(2026, 11, 30)


def _demo_daily_series(*, days: int, seed: int) -> dict[str, dict[dt.date, float]]:
    """Daily EffectiveCost per scope from the demo's exports, parsed by the ingest parsers."""
    import django

    django.setup()
    from attribution.demo.aws_cur2 import cur2_write
    from attribution.demo.azure_cost_details import azure_write
    from attribution.demo.company import company_build
    from attribution.demo.expected import ExpectedTotals
    from attribution.demo.gcp_billing import gcp_write
    from attribution.demo.specs import DemoRange
    from attribution.ingest.detect import format_detect
    from attribution.ingest.formats.base import ParseContext, Rejected

    company = company_build(seed=seed)
    demo_range = DemoRange.ending(end=DEMO_END, days=days)
    series: dict[str, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    rejected = 0
    with tempfile.TemporaryDirectory(prefix="bench-forecast-demo-") as folder:
        out_dir = Path(folder)
        totals = ExpectedTotals(generator={"seed": seed, "days": days})
        for writer in (cur2_write, gcp_write, azure_write):
            writer(company=company, demo_range=demo_range, out_dir=out_dir, totals=totals)
        totals.write(out_dir / "expected_totals.json")
        entries = json.loads((out_dir / "expected_totals.json").read_text())["entries"]
        for entry in entries:
            # The current version of each period; Azure's effective cost is its amortized dataset.
            if entry["version"] != "current" or entry["dataset"] == "actual":
                continue
            for name in entry["files"]:
                path = out_dir / name
                parser = format_detect(path)
                for row in parser().parse(ParseContext(path=str(path), dataset=entry["dataset"])):
                    if isinstance(row, Rejected):
                        rejected += 1
                        continue
                    day = row["charge_period_start"].astimezone(dt.UTC).date()
                    cost = row["effective_cost"] or Decimal(0)
                    series["company"][day] += cost
                    series[f"provider:{entry['provider']}"][day] += cost
                    tags = row.get("normalized_tags") or {}
                    team = (json.loads(tags) if isinstance(tags, str) else tags).get("team")
                    if team:
                        series[f"team:{team}"][day] += cost
    if rejected:
        print(f"demo exports: {rejected} rows rejected by the parsers (left out)")
    return {scope: {day: float(value) for day, value in by_day.items()} for scope, by_day in series.items()}


def _inside(lower: float, actual: float, upper: float) -> bool:
    # Money to the cent, as budgets store it: a flat series' exact forecast is inside its
    # zero-width interval even when the float sums differ in the last bit.
    return round(lower, 2) <= round(actual, 2) <= round(upper, 2)


def _print_forecast(
    label: str,
    known: int,
    spent: float,
    actual: float,
    point: float,
    lower: float,
    upper: float,
    naive: float,
) -> None:
    """One forecast: its error and interval as % of the remaining days' actual spend."""
    remaining = actual - spent
    if remaining <= 0:
        print(f"  {label:<32} day {known}: nothing left to spend")
        return
    share = 100 / remaining
    verdict = "inside" if _inside(lower, actual, upper) else "MISS"
    print(
        f"  {label:<32} day {known}: error {(point - actual) * share:+7.2f} % of the remaining "
        f"{remaining:,.2f}, interval [{(lower - point) * share:+7.2f}, {(upper - point) * share:+7.2f}] %, "
        f"run rate {(naive - actual) * share:+7.2f} %  {verdict}"
    )


def _demo_backtest(*, days: int, seed: int, verbose: bool = False) -> None:
    started = time.perf_counter()
    series = _demo_daily_series(days=days, seed=seed)
    generated = time.perf_counter() - started
    errors_model, errors_naive, covered, total, skipped = [], [], 0, 0, []
    first_day = min(min(by_day) for by_day in series.values())
    calendar = [first_day + dt.timedelta(days=offset) for offset in range((DEMO_END - first_day).days + 1)]
    months = sorted({day.replace(day=1) for day in calendar})
    index = {day: position for position, day in enumerate(calendar)}
    for scope, by_day in sorted(series.items()):
        values = np.array([by_day.get(day, 0.0) for day in calendar])
        for month in months:
            month_days = [day for day in calendar if day.replace(day=1) == month]
            start = index[month]
            if start < 21 or len(month_days) != monthrange(month.year, month.month)[1]:
                skipped.append(f"{scope} {month:%Y-%m}")  # too little history, or month-to-date
                continue
            actual = float(values[start : start + len(month_days)].sum())
            if actual <= 0:
                skipped.append(f"{scope} {month:%Y-%m} (no spend)")
                continue
            for known in (10, 20):
                cut = start + known
                spent = float(values[start:cut].sum())
                point, lower, upper, method, _ = forecast_total(
                    history=list(values[:cut]), spent_in_period=spent,
                    remaining_days=len(month_days) - known, seed=total, first_day=calendar[0],
                )  # fmt: skip
                naive = spent / known * len(month_days)
                errors_model.append(abs(point - actual) / actual)
                errors_naive.append(abs(naive - actual) / actual)
                covered += _inside(lower, actual, upper)
                total += 1
                if verbose:
                    label = f"{scope} {month:%Y-%m} {method}"
                    _print_forecast(label, known, spent, actual, point, lower, upper, naive)
    print(
        f"demo data: {len(series)} scopes ({', '.join(sorted(series))}), {days} days to {DEMO_END}, "
        f"generated and parsed in {generated:.1f} s; {total} forecasts; skipped (under 3 weeks of "
        f"history before the month, or no spend): {len(skipped)}"
    )
    mape_model, mape_naive = float(np.mean(errors_model)), float(np.mean(errors_naive))
    report("demo_forecast_mape", mape_model, "ratio", ">=", 0)
    report("demo_run_rate_mape", mape_naive, "ratio", ">=", 0)
    report("demo_forecast_vs_run_rate_mape", mape_model / mape_naive, "x", "<=", 0.8)
    coverage = covered / total
    report("demo_interval80_coverage_min", coverage, "share", ">=", 0.7)
    report("demo_interval80_coverage_max", coverage, "share", "<=", 0.9)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=12, help="series per family")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--demo-days", type=int, default=150, help="days of demo data (0: skip)")
    parser.add_argument("--demo-seed", type=int, default=42, help="the demo generator's seed")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="print each forecast's error and interval (%% of the remaining spend)",
    )
    args = parser.parse_args()
    verbose = args.verbose
    rng = np.random.default_rng(args.seed)
    errors_model, errors_naive, covered, total = [], [], 0, 0
    per_family: dict[str, list[tuple[float, float]]] = {}
    started = time.perf_counter()
    for family in ("trend", "weekly", "noisy", "step", "mixed"):
        for index in range(args.series):
            values = _series(family, rng)
            actual = float(values[HISTORY:].sum())
            for known in (10, 20):
                cut = HISTORY + known
                spent = float(values[HISTORY:cut].sum())
                point, lower, upper, _, _ = forecast_total(
                    history=list(values[:cut]),
                    spent_in_period=spent,
                    remaining_days=MONTH - known,
                    seed=index,
                    first_day=GENERATED_FIRST_DAY,
                )
                naive = spent / known * MONTH
                errors_model.append(abs(point - actual) / actual)
                errors_naive.append(abs(naive - actual) / actual)
                per_family.setdefault(family, []).append((errors_model[-1], errors_naive[-1]))
                inside = _inside(lower, actual, upper)
                covered += inside
                total += 1
                if verbose:
                    _print_forecast(f"{family}#{index}", known, spent, actual, point, lower, upper, naive)
    seconds = time.perf_counter() - started
    for family, pairs in per_family.items():
        model, naive = (float(np.mean([pair[i] for pair in pairs])) for i in (0, 1))
        print(f"{family:>7}: forecast MAPE {model:.4f}  run-rate MAPE {naive:.4f}")
    mape_model, mape_naive = float(np.mean(errors_model)), float(np.mean(errors_naive))
    print(f"{total} forecasts in {seconds:.1f} s ({seconds / total * 1000:.0f} ms each)")
    report("forecast_mape", mape_model, "ratio", ">=", 0)
    report("run_rate_mape", mape_naive, "ratio", ">=", 0)
    report("forecast_vs_run_rate_mape", mape_model / mape_naive, "x", "<=", 0.8)
    coverage = covered / total
    report("interval80_coverage_min", coverage, "share", ">=", 0.7)
    report("interval80_coverage_max", coverage, "share", "<=", 0.9)
    if args.demo_days > 0:
        _demo_backtest(days=args.demo_days, seed=args.demo_seed, verbose=verbose)


if __name__ == "__main__":
    main()
