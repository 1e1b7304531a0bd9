"""Time from gateway usage to a refused lease: how fast a runaway team is stopped.

    python bench/enforcement.py [--trials 20] [--timeout 60]

A scratch database `inferensys_bench_enforcement`, a real gunicorn and a real Celery worker (queues
default and rollup; no beat, so only the reactive path is measured). Each trial has its own team
with a $10 monthly budget that blocks at 100 %, on a per-token deployment whose price card makes
the batch below cost $25. The trial first takes a lease for the team's budget (granted), then
posts one usage batch through `POST /api/v1/usage` with the gateway's token and, from the moment
that answer arrives, asks `POST /api/v1/leases` every 100 ms until the grant is 0 (blocked).

Path measured: usage batch -> rollup task -> estimates of the day re-made from usage and price
card -> budget evaluated -> block applied (and the lease pool told the spend) -> lease refused.

Figure: p95 of that time over the trials; target <= 10 s. The clouds' own budget alerts evaluate
every 8-24 hours on data a day old (printed beside it). Exit status 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, REPO, bench_env, create_database, report  # noqa: E402

DATABASE = "inferensys_bench_enforcement"
SETUP = """
import django; django.setup()
import datetime as dt, json
from decimal import Decimal
from attribution.models import Deployment, PriceCard, ServedModel, Team
from governance.models import Budget, BudgetThreshold
from routing.models import Gateway
from routing.services import gateway_token_rotate
model = ServedModel.objects.create(name="Llama 70B", slug="llama-70b")
deployment = Deployment.objects.create(
    slug="llama-70b-bedrock", model=model, provider="aws", region="us-east-1",
    pricing_mode="managed_per_token",
)
since = dt.date.today() - dt.timedelta(days=40)
for unit, price in (("1m_input_tokens", "10"), ("1m_output_tokens", "30")):
    PriceCard.objects.create(deployment=deployment, unit=unit, price=Decimal(price), valid_from=since)
budgets = []
for index in range({trials}):
    team = Team.objects.create(name=f"Team {{index}}", slug=f"team-{{index}}")
    budget = Budget.objects.create(
        name=f"Team {{index}} cap", team=team, amount=Decimal("10"), period="month"
    )
    BudgetThreshold.objects.create(budget=budget, percent=Decimal("100"), action="block")
    budgets.append([team.slug, budget.pk])
gateway = Gateway.objects.create(name="edge", slug="edge", kind="envoy")
print(json.dumps({{"token": gateway_token_rotate(gateway=gateway, actor=None), "budgets": budgets}}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Api:
    def __init__(self, port: int, token: str):
        self.port, self.headers = (
            port,
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        for attempt in range(3):
            try:
                self.conn.request("POST", path, json.dumps(body), self.headers)
                response = self.conn.getresponse()
                raw = response.read()
                return response.status, (json.loads(raw) if raw.startswith(b"{") else {"raw": raw[:200]})
            except (http.client.HTTPException, OSError):
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()

    env = bench_env(DATABASE)
    # Its own broker folder (or the given broker), and no gateway-token rate limit in the way.
    env["INFERENSYS_DATA_DIR"] = tempfile.mkdtemp(prefix="bench-enforcement-")
    env["INFERENSYS_GATEWAY_TOKEN_RATE_PER_MINUTE"] = "1000000"
    create_database(env, DATABASE)
    setup = subprocess.run(
        [PYTHON, "-c", SETUP.format(trials=args.trials)],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    config = json.loads(setup.stdout.strip().splitlines()[-1])
    port = _free_port()
    log = open(Path(env["INFERENSYS_DATA_DIR"]) / "worker.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [str(Path(PYTHON).parent / "celery"), "-A", "config", "worker", "-Q", "default,rollup", "-c", "2",
         "-l", "info", "--without-mingle", "--without-gossip", "-n", f"bench-{os.getpid()}@%h"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = subprocess.Popen(
        [str(Path(PYTHON).parent / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--log-level", "warning"],
        cwd=REPO, env=env,
    )  # fmt: skip
    timings: list[float] = []
    try:
        api = Api(port, config["token"])
        for _ in range(200):
            try:
                api.conn.request("GET", "/healthz")
                if api.conn.getresponse().status == 200:
                    break
            except OSError:
                api.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                time.sleep(0.1)
        time.sleep(3)  # let the worker connect to the broker
        for index, (team, budget_id) in enumerate(config["budgets"]):
            status, first = api.post("/api/v1/leases", {"budget": budget_id, "amount": "1"})
            assert status == 200 and first["granted"] != "0E-10" and not first["blocked"], first
            now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
            batch = {
                "batch_id": f"bench-{os.getpid()}-{index}",
                "records": [
                    {
                        "bucket_start": now.isoformat().replace("+00:00", "Z"), "bucket_seconds": 60,
                        "deployment": "llama-70b-bedrock", "team": team, "model": "llama-70b",
                        "requests": 500, "input_tokens": 1_000_000, "output_tokens": 500_000,
                    }
                ],
            }  # fmt: skip
            status, answer = api.post("/api/v1/usage", batch)
            assert status in (200, 201, 202), (status, answer)
            posted = time.perf_counter()
            refused, lease_id = None, first["lease"]
            while time.perf_counter() - posted < args.timeout:
                # Renew (returning the previous grant unused), so grants never pile up: a zero grant
                # can then only come from the spend landing: the block, or the pool's spend known
                # past the limit (whichever the lease saw first).
                status, grant = api.post(
                    "/api/v1/leases", {"budget": budget_id, "amount": "1", "renew": lease_id, "used": "0"}
                )
                assert status == 200, grant
                if float(grant["granted"]) == 0:
                    assert grant["blocked"] or float(grant["remaining"]) <= 0, grant
                    refused = time.perf_counter() - posted
                    break
                lease_id = grant["lease"]
                time.sleep(0.1)
            timings.append(refused if refused is not None else float("inf"))
            print(
                f"trial {index + 1:2d}: lease refused after {refused if refused is not None else 'TIMEOUT'} s"
            )
    finally:
        for process in (server, worker):
            process.send_signal(signal.SIGTERM)
        for process in (server, worker):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
    finite = sorted(timings)
    p95 = finite[max(0, int(round(0.95 * len(finite))) - 1)]
    print(f"median {statistics.median(finite):.2f} s, max {finite[-1]:.2f} s over {len(finite)} trials; "
          "the clouds' budget consoles: every 8-24 h (28800-86400 s) on data a day old")  # fmt: skip
    report("enforcement_p95_seconds", p95, "s", "<=", 10)
    report("enforcement_median_seconds", statistics.median(finite), "s", "<=", 10)


if __name__ == "__main__":
    main()
