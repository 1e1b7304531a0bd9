"""The cold Overview (computed, not cached) on a built demo database: its HTML, its CPU, its profile.

    python bench/overview_cold.py --database NAME save DIR      # content HTML, 4 roles x 8 filters
    python bench/overview_cold.py --database NAME compare DIR   # the same, against DIR: identical?
    python bench/overview_cold.py --database NAME time [--requests 10] [--profile FILE]

`save`/`compare` guard a change to what the page computes: the rendered content of every role and
filter must stay byte-identical (figures, links, texts). `time` requests the unfiltered and the
provider-filtered page through the full Django handler after a data version bump (as
bench/pages.py's cold lines do) and prints each role's median and p95 wall and CPU ms; `--profile`
writes a cProfile of those requests (read it with `python -m pstats FILE`). The database is one
bench/pages.py built (`--database`); nothing is written to it but data version rows.
"""

from __future__ import annotations

import argparse
import cProfile
import difflib
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, bench_env  # noqa: E402

ROLES = ("admin", "finance", "lead", "viewer")


def _filters(user) -> dict[str, dict[str, str]]:
    """Named query strings: each filter the form offers, a custom range and a wrong one."""
    from attribution.costs.overview import UNALLOCATED_TEAM, overview_filter_choices

    choices = overview_filter_choices(user=user)
    filters = {
        "unfiltered": {},
        "provider": {"provider": "aws"},
        "range": {"start": "2026-10-01", "end": "2026-11-15"},
        "bad_range": {"start": "2026-11-15", "end": "2026-10-01", "provider": "gcp"},
    }
    teams = [pk for pk, _ in choices["teams"] if pk != UNALLOCATED_TEAM]
    if teams:
        filters["team"] = {"team": teams[0]}
    if any(pk == UNALLOCATED_TEAM for pk, _ in choices["teams"]):
        filters["unallocated"] = {"team": UNALLOCATED_TEAM}
    if choices["models"]:
        filters["model"] = {"model": choices["models"][0][0]}
        filters["model_range"] = {
            "model": choices["models"][-1][0],
            "start": "2026-11-20",
            "end": "2026-12-03",
        }
    return filters


def _content(user, query: dict[str, str]) -> str:
    from django.test import RequestFactory

    from attribution.views.overview import _overview_render

    request = RequestFactory().get("/", query)
    request.user = user
    return _overview_render(request, "bench:overview-cold")[1]


def _pages(directory: Path, *, compare: bool) -> int:
    from django.contrib.auth import get_user_model

    differing = 0
    for role in ROLES:
        user = get_user_model().objects.get(username=role)
        for name, query in _filters(user).items():
            path = directory / f"{role}-{name}.html"
            html = _content(get_user_model().objects.get(pk=user.pk), query)
            if not compare:
                path.write_text(html)
                continue
            before = path.read_text()
            if html == before:
                print(f"  same     {path.name}")
                continue
            differing += 1
            print(f"  DIFFERS  {path.name}")
            diff = difflib.unified_diff(before.splitlines(), html.splitlines(), lineterm="", n=0)
            for line in list(diff)[:20]:
                print(f"    {line[:200]}")
    return differing


def _time(requests: int, profile: str) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from attribution.costs.data_version import data_version_bump

    profiler = cProfile.Profile(time.process_time) if profile else None
    for role in ROLES:
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(get_user_model().objects.get(username=role))
        for url in ("/", "/?provider=aws"):
            for _ in range(2):  # warm-up
                data_version_bump()
                client.get(url)
            wall, cpu = [], []
            for _ in range(requests):
                data_version_bump()
                started, started_cpu = time.perf_counter(), time.process_time()
                if profiler:
                    profiler.enable()
                response = client.get(url)
                if profiler:
                    profiler.disable()
                cpu.append((time.process_time() - started_cpu) * 1000)
                wall.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.status_code
            p95 = statistics.quantiles(wall, n=20, method="inclusive")[-1]
            print(
                f"  {role:<8} {url:<16} wall median {statistics.median(wall):6.1f} p95 {p95:6.1f} ms"
                f"  cpu min {min(cpu):5.1f} median {statistics.median(cpu):5.1f} p95 "
                f"{statistics.quantiles(cpu, n=20, method='inclusive')[-1]:5.1f} ms"
            )
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")
    if profiler:
        profiler.dump_stats(profile)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", required=True)
    parser.add_argument("action", choices=("save", "compare", "time"))
    parser.add_argument("directory", nargs="?", default="")
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--profile", default="")
    args = parser.parse_args()
    os.environ.update(bench_env(args.database))
    os.chdir(REPO)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    if args.action == "time":
        _time(args.requests, args.profile)
        return
    directory = Path(args.directory)
    directory.mkdir(parents=True, exist_ok=True)
    differing = _pages(directory, compare=args.action == "compare")
    if args.action == "compare":
        print("identical" if not differing else f"{differing} page(s) differ")
        sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
