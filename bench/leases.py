"""Leases under contention: 50 gateway replicas spend against one budget with a block threshold.

    python bench/leases.py [--clients 50] [--budget 1000] [--lease 0.50] [--workers 3]

A scratch database `inferensys_bench_leases`, a real gunicorn serving the API, and `--clients`
threads, each a gateway replica with its own keep-alive connection and the gateway's token. Each
replica asks `POST /api/v1/leases` for `--lease` dollars, serves requests costing 0.5-3 cents
while its grant lasts (the last request may overshoot it, as real traffic does), then renews
reporting what it used; it stops when a grant is 0. Nothing else spends.

Figures:
- overspend / budget, where overspend = what the replicas spent past the limit; target <= lease
  size x clients / budget (the bound leases promise: the grants outstanding);
- leases served per second against bare `SELECT 1` round trips through the same stack in the same
  run: the same clients on the same gunicorn calling `GET /readyz` (one `SELECT 1`, no lock);
  target >= 0.3 x. The baseline is measured for 5 s before and 5 s after the leases (the mean of
  the two), so that load from other processes that changes during the run weighs on both alike.
  The raw `SELECT 1` rate on one connection without HTTP is printed beside it.
Exit status 0.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, REPO, bench_env, create_database, report  # noqa: E402

DATABASE = "inferensys_bench_leases"
SETUP = """
import django; django.setup()
from decimal import Decimal
from attribution.models import Team
from governance.models import Budget, BudgetThreshold
from routing.models import Gateway
from routing.services import gateway_token_rotate
team = Team.objects.create(name="Search", slug="search")
budget = Budget.objects.create(name="Search hard cap", team=team, amount=Decimal("{budget}"), period="month")
BudgetThreshold.objects.create(budget=budget, percent=Decimal("100"), action="block")
gateway = Gateway.objects.create(name="edge", slug="edge", kind="haproxy")
print(budget.pk, gateway_token_rotate(gateway=gateway, actor=None))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _select1_rate(env: dict[str, str], seconds: float = 3.0) -> float:
    code = f"""
import os, time, django; django.setup()
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
    end, count = time.perf_counter() + {seconds}, 0
    start = time.perf_counter()
    while time.perf_counter() < end:
        cursor.execute("SELECT 1"); cursor.fetchone(); count += 1
    print(count / (time.perf_counter() - start))
"""
    out = subprocess.run([PYTHON, "-c", code], cwd=REPO, env=env, check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def _http_rate(port: int, path: str, *, clients: int, seconds: float) -> float:
    """Requests per second that `clients` keep-alive clients get from GET `path` for `seconds`."""
    counts = [0] * clients
    stop = time.perf_counter() + seconds

    def client(number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.perf_counter() < stop:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            counts[number] += response.status == 200

    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--budget", type=Decimal, default=Decimal("1000"))
    parser.add_argument("--lease", type=Decimal, default=Decimal("0.50"))
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()

    env = bench_env(DATABASE)
    # 50 replicas share one gateway token here: the per-token request rate limit is not what is measured.
    env["INFERENSYS_GATEWAY_TOKEN_RATE_PER_MINUTE"] = "1000000"
    create_database(env, DATABASE)
    setup = subprocess.run(
        [PYTHON, "-c", SETUP.format(budget=args.budget)],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    budget_id, token = setup.stdout.strip().splitlines()[-1].split()
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(PYTHON).parent / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.workers), "--threads", "8", "--worker-class", "gthread",
         "--log-level", "warning"],
        cwd=REPO, env=env,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        readyz_before = _http_rate(port, "/readyz", clients=args.clients, seconds=5.0)
        spent_by_client = [Decimal("0")] * args.clients
        requests_by_client = [0] * args.clients
        errors: list[str] = []
        start = threading.Barrier(args.clients + 1)

        def replica(number: int) -> None:
            rng = random.Random(number)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            lease_id, used = None, Decimal("0")
            start.wait()
            while True:
                body = {"budget": int(budget_id), "amount": str(args.lease)}
                if lease_id is not None:
                    body.update(renew=lease_id, used=str(used))
                conn.request("POST", "/api/v1/leases", json.dumps(body), headers)
                response = conn.getresponse()
                raw = response.read()
                requests_by_client[number] += 1
                if response.status != 200:
                    errors.append(f"{response.status} {raw[:200]!r}")
                    return
                payload = json.loads(raw)
                granted = Decimal(payload["granted"])
                if granted == 0:
                    return
                lease_id, used = payload["lease"], Decimal("0")
                while used < granted:  # serve while the grant lasts; the last request may overshoot
                    used += Decimal(rng.randint(5, 30)) / 1000
                spent_by_client[number] += used

        threads = [threading.Thread(target=replica, args=(number,)) for number in range(args.clients)]
        for thread in threads:
            thread.start()
        start.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - began
        readyz_after = _http_rate(port, "/readyz", clients=args.clients, seconds=5.0)
        readyz_rate = (readyz_before + readyz_after) / 2
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    if errors:
        print("errors:", errors[:3])
    spent = sum(spent_by_client)
    leases = sum(requests_by_client)
    select1 = _select1_rate(env)
    overspend = max(Decimal("0"), spent - args.budget)
    bound = args.lease * args.clients / args.budget
    print(f"{args.clients} replicas spent {spent:.2f} of a {args.budget} budget with {leases} lease requests "
          f"in {seconds:.2f} s; GET /readyz (one SELECT 1) over the same server and clients: "
          f"{readyz_rate:.0f}/s ({readyz_before:.0f} before, {readyz_after:.0f} after); "
          f"raw SELECT 1 on one connection, no HTTP: {select1:.0f}/s")  # fmt: skip
    report("lease_overspend_share", float(overspend / args.budget), "ratio", "<=", float(bound))
    report("leases_per_second", leases / seconds, "req/s", ">", 0)
    report("select1_http_round_trips_per_second", readyz_rate, "req/s", ">", 0)
    report("leases_vs_select1_http", leases / seconds / readyz_rate, "x", ">=", 0.3)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    main()
