"""Server time of every page at demo scale, per role, against the site's bare chrome.

    python bench/pages.py [--days 90] [--requests 20] [--warmup 3] [--reuse] [--database NAME]

Builds a scratch database (`--database`, default `inferensys_bench_pages`) the way `make demo`
does (bin/demo), with Celery eager instead of a worker: demo_seed, setup_roles --demo-users,
`--days` days of exports for the three clouds (bills two days late), the gateways' usage,
ingestion through the production path (allocation, rollups and unit costs run as the worker would
run them), estimates, the estimates replay, the ingest problems (a failed run, rejected rows),
suggested rules, governance_demo and the routing demo's story (its pushes fail without HAProxy, as
they would with the gateway down; the pages show that too). `--reuse` skips the build when the
database is already there (new migrations are applied; rebuild for final figures).

Then logs in as each demo role (admin, finance, lead, viewer) and requests every page of the
navigation the role sees (config/navigation.py, so pages added there are covered without editing
this script) plus the detail pages: a budget's detail and edit form, a model's routing page, a run's
rejected rows, a deployment's estimate accuracy, the explorer grouped by team, weekly, amortized,
filtered by provider and model over 90 days, and the overview filtered by provider.

The Overview serves its content from a cache keyed on the data version (every write to what it
reads bumps it), so it is measured both ways, each with its own BENCH line:
`page_attribution_overview_p95` (and `page_overview_filtered_p95`) warm, nothing changed since the
last request, the cache answers, as it does for every reader between two writes; and
`page_attribution_overview_cold_p95` (`page_overview_filtered_cold_p95`), the first request after a
version bump: the page is computed and rendered. The version is bumped, untimed, once per round
before the first cold page (each cold page has a cache key of its own, so each is computed).

Server time is the time of the request through Django's full handler (middleware, session, auth,
view, template rendering) in this process, with the Django test Client (no socket, no browser).
Each (page, role) gets `--warmup` unmeasured requests, then `--requests` timed ones, in rounds
that ask every page once (so load from elsewhere on a shared machine falls on all pages alike);
the median, p95 and this process's CPU time are printed per role, and one BENCH line per page
with the worst role's p95: `BENCH page_<name>_p95=<ms> ms (target <= 150): PASS|FAIL`. The
baselines, in the same run and process: /healthz (no database), and a bare page (base.html with
the navigation, signed in), the cost every page pays before its own content. The query count of
one request per (page, role) is printed too (tests assert those counts stay flat as rows grow).
Exit status 0 either way.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, bench_env, create_database, report  # noqa: E402

DATABASE = "inferensys_bench_pages"
TARGET_MS = 150.0
ROLES = ("admin", "finance", "lead", "viewer")
ROUTED_MODEL = "llama-3-1-70b-instruct"
# Pages that serve their content from a cache keyed on the data version (attribution/views/overview.py).
CACHED_PAGES = ("attribution_overview", "overview_filtered")


def _database_has_demo(env: dict[str, str]) -> bool:
    """Whether the scratch database exists and holds a built demo (for --reuse)."""
    code = (
        "import django; django.setup()\n"
        "from attribution.models import DailyCost\n"
        "from governance.models import Budget\n"
        "print(DailyCost.objects.exists() and Budget.objects.exists())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    return done.returncode == 0 and done.stdout.strip().endswith("True")


def _build(days: int) -> None:
    from django.core.management import call_command

    quiet = io.StringIO()
    with tempfile.TemporaryDirectory() as scratch:
        exports = Path(scratch) / "exports"
        steps = [
            ("demo_seed", (), {}),
            ("setup_roles", (), {"demo_users": True}),
            ("demo_exports", (), {"days": days, "out": str(exports), "billing_lag_days": 2}),
            ("load_demo_usage", (), {"dir": str(exports / "usage")}),
            ("ingest_exports", (str(exports),), {}),
            ("estimate_spend", (), {"days": 7}),
            ("estimates_replay", (), {"days": 14}),
            ("demo_problems", (), {"out": str(exports / "problems")}),
            ("suggest_rules", (), {}),
            ("governance_demo", (), {}),
            ("routing_demo", ("prepare",), {"out": str(Path(scratch) / "demo")}),
            ("routing_demo", ("story",), {}),
        ]
        for name, args, kwargs in steps:
            started = time.perf_counter()
            call_command(name, *args, stdout=quiet, stderr=quiet, **kwargs)
            print(f"  {name} {' '.join(args)}: {time.perf_counter() - started:.1f} s", flush=True)


def _vacuum_analyze() -> None:
    """What autovacuum does minutes after `make demo` on a default server (the embedded Postgres):
    planner statistics for the fresh tables and visibility maps for index-only scans. Servers
    tuned for tests (autovacuum off, like this machine's shared one) would otherwise leave the
    planner guessing on tables rewritten many times over by the build."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"VACUUM ANALYZE in {time.perf_counter() - started:.1f} s", flush=True)


def _bare_urlconf() -> None:
    """The app's URLs plus /bench/bare-page: base.html with the navigation for a signed-in user."""
    from django.conf import settings
    from django.contrib.auth.decorators import login_required
    from django.shortcuts import render
    from django.urls import clear_url_caches, path

    from config.urls import urlpatterns

    @login_required
    def bare_page(request):
        return render(request, "base.html", {})

    module = types.ModuleType("bench_pages_urls")
    module.urlpatterns = [path("bench/bare-page", bare_page, name="bench-bare-page"), *urlpatterns]
    sys.modules[module.__name__] = module
    settings.ROOT_URLCONF = module.__name__
    clear_url_caches()


def _detail_pages(user) -> dict[str, str]:
    """Detail pages for `user`: name -> URL (only those the role may open)."""
    from django.urls import reverse

    from attribution.costs.explorer import explorer_filter_choices, explorer_latest_day
    from attribution.models import Deployment, IngestRun, SpendEstimate
    from governance import access
    from governance.models import Budget

    pages: dict[str, str] = {}
    budgets = Budget.objects.restrict(user).order_by("id")
    budget = budgets.first()
    if budget is not None:
        pages["budget_detail"] = reverse("governance:budget", args=[budget.pk])
    editable = next(
        (b for b in budgets if access.user_may_edit_team_scope(user=user, team_id=b.team_id)), None
    )
    if editable is not None:
        pages["budget_edit"] = reverse("governance:budget-edit", args=[editable.pk])
    pages["routing_model"] = reverse("routing:model", args=[ROUTED_MODEL])
    if user.has_perm("attribution.view_rejectedrow"):
        run = IngestRun.objects.filter(rows_rejected__gt=0).order_by("-rows_rejected", "id").first()
        run = run or IngestRun.objects.order_by("id").first()
        if run is not None:
            pages["rejected_rows"] = reverse("attribution:rejected-rows", args=[run.pk])
    slug = (
        SpendEstimate.objects.values_list("deployment__slug", flat=True).order_by("deployment__slug").first()
        or Deployment.objects.order_by("slug").values_list("slug", flat=True).first()
    )
    if slug:
        pages["deployment_accuracy"] = reverse("attribution:deployment-accuracy", args=[slug])
    choices = explorer_filter_choices(user=user)
    latest = explorer_latest_day(user=user)
    if latest is not None and choices["provider"]:
        import datetime as dt

        start = latest - dt.timedelta(days=89)
        query = f"start={start}&end={latest}&group_by=team&granularity=week&cost=amortized"
        query += f"&f_provider={choices['provider'][0]}"
        if choices["model"]:
            query += f"&f_model={choices['model'][0]}"
        pages["explorer_filtered"] = reverse("attribution:explorer") + "?" + query
        pages["overview_filtered"] = reverse("attribution:overview") + f"?provider={choices['provider'][0]}"
    return pages


def _nav_pages(user) -> dict[str, str]:
    """Every page of the navigation the user sees: name (from its URL name) -> URL."""
    from django.urls import reverse

    from config.navigation import SECTIONS

    pages = {}
    for section in SECTIONS:
        for entry in section.entries:
            if entry.visible(user):
                pages[entry.url_name.replace(":", "_").replace("-", "_")] = reverse(entry.url_name)
    return pages


def _time(
    client, url: str, warmup: int, requests: int, cpu: list[float] | None = None, *, cold: bool = False
) -> list[float]:
    """Wall-clock ms of each timed request; this process's CPU ms of each appended to `cpu`.
    `cold`: each request follows a bump of the data version (untimed), so it misses the cache."""
    from attribution.costs.data_version import data_version_bump

    for _ in range(warmup):
        if cold:
            data_version_bump()
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {response.status_code}")
    times = []
    for _ in range(requests):
        if cold:
            data_version_bump()
        started, started_cpu = time.perf_counter(), time.process_time()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - started_cpu) * 1000)
    return times


def _p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20, method="inclusive")[-1]


def _queries(client, url: str, *, cold: bool = False) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from attribution.costs.data_version import data_version_bump

    if cold:
        data_version_bump()
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    return len(captured.captured_queries)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=90, help="days of demo history (make demo: 90)")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page and role")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="keep the database if it holds a demo")
    parser.add_argument("--only", default="", help="comma-separated page names to measure (default all)")
    parser.add_argument(
        "--database", default=DATABASE, help=f"scratch database to build or reuse (default {DATABASE})"
    )
    args = parser.parse_args()
    database = args.database

    env = bench_env(database)
    env["CELERY_TASK_ALWAYS_EAGER"] = "true"
    env.setdefault("DEMO_PASSWORD", "bench-pages")
    reuse = args.reuse and _database_has_demo(env)
    if reuse:
        # Migrations added since the build still apply (their new columns stay as they left them).
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True
        )
    else:
        create_database(env, database)
    os.environ.update(env)
    os.chdir(REPO)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    import logging
    import warnings

    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic here
    if reuse:
        print(f"reusing {database}")
    else:
        started = time.perf_counter()
        print(f"building the demo ({args.days} days) in {database}:", flush=True)
        # The routing story's pushes fail (no HAProxy here) and log their tracebacks: expected.
        logging.disable(logging.CRITICAL)
        _build(args.days)
        logging.disable(logging.NOTSET)
        print(f"demo built in {time.perf_counter() - started:.0f} s", flush=True)
    _vacuum_analyze()

    from django.contrib.auth import get_user_model
    from django.test import Client

    from attribution.models import CostLineItem, DailyCost
    from governance.models import AuditEvent, Budget

    print(
        f"scale: {CostLineItem.objects.count()} line items, {DailyCost.objects.count()} daily rollup rows, "
        f"{Budget.objects.count()} budgets, {AuditEvent.objects.count()} audit events"
    )
    _bare_urlconf()
    only = {name for name in args.only.split(",") if name}
    users = get_user_model().objects
    worst: dict[str, tuple[float, str]] = {}
    baseline: dict[str, list[float]] = {"healthz": [], "bare_page": []}
    for role in ROLES:
        user = users.get(username=role)
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        pages = {"healthz": "/healthz", "bare_page": "/bench/bare-page"}
        pages.update(
            (name, url)
            for name, url in {**_nav_pages(user), **_detail_pages(user)}.items()
            if not only or name in only
        )
        # Cached pages (the Overview) are measured twice: as served from the cache (`attribution_overview`)
        # and computed, on the first request after a write changed the data version (`_cold`).
        cold = {f"{name}_cold" for name in pages if name in CACHED_PAGES}
        pages.update({name: pages[name.removesuffix("_cold")] for name in sorted(cold)})
        # Cold pages' warmups first: their bumps would otherwise leave the warm pages uncached.
        for name, url in sorted(pages.items(), key=lambda item: item[0] not in cold):
            _time(client, url, args.warmup, 0, cold=name in cold)
        # Round-robin: each round asks every page once, so a burst of load from elsewhere on a
        # shared machine lands on all pages alike instead of on whichever page was being timed.
        first_cold = next((name for name in pages if name in cold), None)
        times: dict[str, list[float]] = {name: [] for name in pages}
        cpu: dict[str, list[float]] = {name: [] for name in pages}
        for _ in range(args.requests):
            for name, url in pages.items():
                # One bump per round, before the first cold page: every cold page (each its own
                # cache key) is then computed, and the warm ones of the next round are cached.
                times[name] += _time(client, url, 0, 1, cpu[name], cold=name == first_cold)
        for name, url in pages.items():
            if name in baseline:
                baseline[name] += times[name]
                continue
            p95, median = _p95(times[name]), statistics.median(times[name])
            queries = _queries(client, url, cold=name in cold)
            print(
                f"  {role:<8} {name:<22} median {median:6.1f} ms  p95 {p95:6.1f} ms  "
                f"(cpu here {statistics.median(cpu[name]):5.1f} ms)  {queries:3d} queries  {url}",
                flush=True,
            )
            if p95 >= worst.get(name, (-1.0, ""))[0]:
                worst[name] = (p95, role)
    # Shared machines: a loaded CPU stretches every figure alike; the baselines show by how much.
    print(f"load average while measuring (1, 5, 15 min): {os.getloadavg()} on {os.cpu_count()} CPUs")
    for name, times in baseline.items():
        print(f"baseline {name}: median {statistics.median(times):.1f} ms, p95 {_p95(times):.1f} ms")
    report("page_baseline_healthz_p95", _p95(baseline["healthz"]), "ms", "<=", TARGET_MS)
    report("page_baseline_bare_page_p95", _p95(baseline["bare_page"]), "ms", "<=", TARGET_MS)
    for name, (p95, role) in sorted(worst.items()):
        print(f"# {name}: slowest for {role}")
        report(f"page_{name}_p95", p95, "ms", "<=", TARGET_MS)


if __name__ == "__main__":
    main()
