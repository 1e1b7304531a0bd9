"""Period-end forecast accuracy against the naive run rate, on generated daily spend series.

    python bench/forecast.py [--series 12] [--seed 11]

Series families (each `--series` series, 150 days of history then a 30-day month):
trend (linear growth, noise), weekly (weekday/weekend pattern, noise), noisy (level with heavy
noise), step (a level change 20-60 days before the month), and mixed (trend + weekly + a step).
Forecasts of the month's total are made at day 10 and day 20 (days 1-10 / 1-20 known) by
governance.forecasting.forecast_total, the code budgets use, and by the naive run rate
(spend so far / days so far x days in the month) that the clouds' budget consoles show.

Figures: MAPE of both, their ratio (target <= 0.8) and the share of actual totals inside the
forecast's 80 % interval (target between 0.7 and 0.9). Needs no database. Exit status 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
from _common import report  # noqa: E402

from governance.forecasting import forecast_total  # noqa: E402

HISTORY, MONTH = 150, 30
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=12, help="series per family")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
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
                )
                naive = spent / known * MONTH
                errors_model.append(abs(point - actual) / actual)
                errors_naive.append(abs(naive - actual) / actual)
                per_family.setdefault(family, []).append((errors_model[-1], errors_naive[-1]))
                covered += lower <= actual <= upper
                total += 1
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


if __name__ == "__main__":
    main()
