"""Requests per second of the authenticated policy endpoint against a bare Django view.

    python bench/policy_api.py [--seconds 8]

Builds a scratch database `inferensys_bench_policy_api`, publishes a document for one gateway (one
model on six deployments, two origins, quotas), and serves the app with gunicorn (2 sync workers,
the same process for both views). wrk (installed with apt-get when missing) loads, in one run:
- GET /api/v1/gateways/self/policy with the gateway's token (200, full document);
- the same with If-None-Match: the current ETag (304 from the stored hash);
- /bench/bare-policy: a view returning the same bytes (body and headers), without authentication or
  database, 200 and 304 (bench/policy_api_app/).
Both sides get the same request (the bare view ignores the Authorization header, but gunicorn parses
it and Django copies it into the request for both), within a round the side that goes first
alternates, so neither always follows the other, and each endpoint gets one unmeasured second first
(the workers' first requests import the URLconf, views and DRF). The workers' CPU per request is
printed as well: it moves much less than requests/s with the load of other processes.
Targets (issue 12): authenticated >= 0.5 x bare for 200, >= 0.8 x bare for 304. Exit status 0.

The app runs as in production: its cache is Redis (INFERENSYS_CACHE_URL, else CELERY_BROKER_URL,
else redis://127.0.0.1:6379/0), which the policy endpoint's cache and the gateway rate count use.
The gateway token rate is lifted so that wrk is not answered 429: the count is still made.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, REPO, bench_env, create_database, report  # noqa: E402

DATABASE = "inferensys_bench_policy_api"
SEED = """
import datetime as dt, json, sys
from decimal import Decimal
from attribution.models import Deployment, PriceCard, ServedModel
from routing.models import Gateway, PolicyDocument, RoutingPolicy
from routing import services, documents
model = ServedModel.objects.create(name="llama-70b", slug="llama-70b")
RoutingPolicy.objects.create(model=model, objective="cheapest_within_slo",
                             min_share_per_provider=Decimal("0.1"))
for index, provider in enumerate(["aws", "aws", "gcp", "gcp", "azure", "azure"]):
    d = Deployment.objects.create(slug=f"llama-{provider}-{index}", model=model, provider=provider,
        region="us-east-1", pricing_mode="on_demand", residency_region="us",
        endpoint_url=f"http://10.0.0.{index}:8000")
    for unit in ("1m_input_tokens", "1m_output_tokens"):
        PriceCard.objects.create(deployment=d, unit=unit, price=Decimal(str(1 + index * 0.3)),
                                 valid_from=dt.date(2026, 1, 1))
gateway = Gateway.objects.create(name="edge", slug="edge", kind="pull_only", origin_provider="aws",
                                 origin_region="us-east-1", extra_origins=["eu-west-1"])
gateway.served_models.add(model)
token = services.gateway_token_rotate(gateway=gateway, actor=None)
services.policies_republish(reason="cost")
document = PolicyDocument.objects.get(gateway=gateway)
body = documents.document_body(version=document.version, content_hash_hex=document.content_hash,
                               content=document.content)
sys.stdout.write(json.dumps({"token": token, "etag": f'"{document.version}-{document.content_hash}"',
                             "body": body.decode()}))
"""


def wrk_install() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not installed and apt-get could not install it")
    return found


def redis_check(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.exceptions.RedisError as error:
        raise SystemExit(f"No Redis at {url} ({error}): start one or set INFERENSYS_CACHE_URL") from error


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wrk(binary: str, url: str, seconds: int, headers: dict[str, str]) -> tuple[float, int]:
    """(requests/s, requests) of one wrk run."""
    args = [binary, "-t2", "-c16", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    output = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        raise SystemExit(f"{url}: {non_2xx.group(1)} error responses\n{output}")
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), requests


def workers_cpu_seconds(master_pid: int) -> float:
    """CPU time (user + system) used so far by gunicorn's workers, the master's children."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    ticks = 0
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    options = parser.parse_args()
    binary = wrk_install()
    env = bench_env(DATABASE)
    create_database(env, DATABASE)
    seeded = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", SEED],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    fixture = json.loads(seeded.stdout.strip().splitlines()[-1])
    workdir = Path(tempfile.mkdtemp(prefix="policy-api-"))
    (workdir / "body.json").write_text(fixture["body"])
    port = free_port()
    cache_url = os.environ.get("INFERENSYS_CACHE_URL") or os.environ.get("CELERY_BROKER_URL", "")
    cache_url = cache_url if cache_url.startswith("redis") else "redis://127.0.0.1:6379/0"
    redis_check(cache_url)
    server_env = {
        **env,
        "BENCH_POLICY_BODY": str(workdir / "body.json"),
        "BENCH_POLICY_ETAG": fixture["etag"],
        "DJANGO_SETTINGS_MODULE": "policy_api_settings",
        "INFERENSYS_CACHE_URL": cache_url,
        "INFERENSYS_GATEWAY_TOKEN_RATE_PER_MINUTE": str(10**9),
    }
    server = subprocess.Popen(
        [
            str(Path(PYTHON).parent / "gunicorn"),
            "config.wsgi:application",
            "--pythonpath",
            f"{REPO},{REPO / 'bench' / 'policy_api_app'}",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=server_env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/bench/bare-policy", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        auth = {"Authorization": f"Bearer {fixture['token']}"}
        conditional = {"If-None-Match": fixture["etag"]}
        request = urllib.request.Request(f"{base}/api/v1/gateways/self/policy", headers=auth)
        assert urllib.request.urlopen(request).read() == fixture["body"].encode(), "bodies differ"
        # The same request headers on both sides: only what answers them differs.
        loads = {
            "policy_200": (f"{base}/api/v1/gateways/self/policy", auth),
            "bare_200": (f"{base}/bench/bare-policy", auth),
            "policy_304": (f"{base}/api/v1/gateways/self/policy", auth | conditional),
            "bare_304": (f"{base}/bench/bare-policy", auth | conditional),
        }
        # One-second rounds, each endpoint in turn: on a shared machine the load of other processes
        # drifts over seconds, and measuring one side after the other would compare two machines.
        # Which side of a pair goes first alternates from round to round.
        rates: dict[str, list[float]] = {name: [] for name in loads}
        # The workers' CPU per request too: a second figure that the load of other processes moves
        # much less than requests/s (it only slows the CPU a request gets, it does not take it away).
        cpu = {name: 0.0 for name in loads}
        served = {name: 0 for name in loads}
        # Warm-up, not measured: each worker imports the URLconf and views on its first request and
        # DRF's modules on its first cache miss (a second or more of CPU here), which would otherwise
        # land in whichever endpoint a worker happens to serve first.
        for url, headers in loads.values():
            wrk(binary, url, 1, headers)
        for round_index in range(options.seconds):
            for pair in (("policy_200", "bare_200"), ("policy_304", "bare_304")):
                for name in pair if round_index % 2 == 0 else reversed(pair):
                    url, headers = loads[name]
                    before = workers_cpu_seconds(server.pid)
                    rate, requests = wrk(binary, url, 1, headers)
                    cpu[name] += workers_cpu_seconds(server.pid) - before
                    served[name] += requests
                    rates[name].append(rate)
        figures = {name: sum(values) / len(values) for name, values in rates.items()}
    finally:
        server.terminate()
        server.wait(timeout=10)
    for name, value in figures.items():
        rounds = ", ".join(f"{v:.0f}" for v in rates[name])
        print(
            f"{name}: {value:,.0f} requests/s (one-second rounds: {rounds}); "
            f"workers' CPU {1000 * cpu[name] / served[name]:.3f} ms/request"
        )

    def cpu_ratio(code: str) -> float:
        per_request = {name: cpu[name] / served[name] for name in (f"policy_{code}", f"bare_{code}")}
        return per_request[f"bare_{code}"] / per_request[f"policy_{code}"]

    for code in ("200", "304"):
        per_round = sorted(p / b for p, b in zip(rates[f"policy_{code}"], rates[f"bare_{code}"], strict=True))
        print(
            f"{code}: policy/bare per round: median {per_round[len(per_round) // 2]:.2f}, "
            f"range {per_round[0]:.2f}-{per_round[-1]:.2f} (the load of other processes, second by second); "
            f"bare/policy CPU per request {cpu_ratio(code):.2f}"
        )
    report("policy_api_200_vs_bare", figures["policy_200"] / figures["bare_200"], "x", ">=", 0.5)
    report("policy_api_304_vs_bare", figures["policy_304"] / figures["bare_304"], "x", ">=", 0.8)
    report("policy_api_304_rps", figures["policy_304"], "req/s", ">", 0)


if __name__ == "__main__":
    main()
