"""From publish to traffic following the new weights, measured at the backends.

    python bench/propagation.py [--trials 10]

Builds a scratch database `inferensys_bench_propagation`, two real HTTP backends and one real
gateway of each kind in front of them: HAProxy (pushed over its runtime API, as the
routing.policy_push task does), Envoy (REST xDS, refresh_delay 1 s) and Traefik (HTTP provider,
pollInterval 1 s), the last two polling this process's control plane (the Django app under a
threaded WSGI server). Each trial makes the other backend the cheaper one (unit costs from
attribution), re-evaluates and publishes, then sends requests through the gateway until five in
a row reach the new backend: the time from the start of the publish to the first of those five.
Targets (issue 12), p95 of the trials: HAProxy <= 1 s; Envoy and Traefik <= poll interval + 1 s.
Exit status 0 either way. HAProxy is skipped (FAIL line) when not installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import bench_env, create_database, report  # noqa: E402

DATABASE = "inferensys_bench_propagation"
POLL_SECONDS = 1.0


def first_answer(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except (urllib.error.URLError, OSError) as error:
        return f"error: {error}"


def time_until_follows(url: str, target: str, started: float, timeout: float = 15.0) -> float:
    streak_started = None
    streak = 0
    while time.perf_counter() - started < timeout:
        now = time.perf_counter()
        if first_answer(url) == target:
            streak_started = streak_started if streak else now
            streak += 1
            if streak == 5:
                return streak_started - started
        else:
            streak = 0
        time.sleep(0.005)
    return timeout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10)
    options = parser.parse_args()
    env = bench_env(DATABASE)
    create_database(env, DATABASE)
    os.environ.update({k: v for k, v in env.items() if k in ("DATABASE_URL", "INFERENSYS_EMBEDDED_DATABASE")})
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
    import django

    django.setup()
    from attribution.models import Deployment, ServedModel, UnitCost
    from routing import services
    from routing.models import DeploymentRouting, Gateway, PolicyDocument, RoutingPolicy
    from tests.routing import gateways as real
    from tests.routing.conftest import unit_cost_record
    from tests.routing.stubs import StubBackends, free_port

    backends = StubBackends(["llama-aws", "llama-gcp"])
    model = ServedModel.objects.create(name="llama-70b", slug="llama-70b")
    RoutingPolicy.objects.create(model=model, objective="cheapest_within_slo", max_step=1, hysteresis=0)
    for name, provider in (("llama-aws", "aws"), ("llama-gcp", "gcp")):
        deployment = Deployment.objects.create(
            slug=name,
            model=model,
            provider=provider,
            region="us-east-1",
            pricing_mode="on_demand",
            residency_region="us",
            endpoint_url=backends.url(name),
        )
        unit_cost_record(deployment, cost_per_1m="1.00" if provider == "aws" else "2.00")
        DeploymentRouting.objects.create(deployment=deployment)

    def gateway(kind: str, **fields) -> tuple[Gateway, str]:
        created = Gateway.objects.create(name=kind, slug=f"{kind}-edge", kind=kind, **fields)
        created.served_models.add(model)
        return created, services.gateway_token_rotate(gateway=created, actor=None)

    control_plane = real.ControlPlane()
    processes = []
    results: dict[str, list[float]] = {}
    try:
        targets: dict[str, tuple[str, Gateway | None]] = {}
        servers = {name: backends.ports[name] for name in ("llama-aws", "llama-gcp")}
        if shutil.which("haproxy"):
            workdir = real.scratch_dir("bench-haproxy-")
            port, runtime_port = free_port(), free_port()
            haproxy_gateway, _ = gateway(
                "haproxy", push_settings={"runtime_api": f"127.0.0.1:{runtime_port}"}
            )
            config = real.haproxy_config(
                port=port,
                runtime_port=runtime_port,
                backend="llama-70b",
                servers=servers,
                state_file=workdir / "s",
            )
            processes.append(real.haproxy_start(workdir=workdir, config=config))
            targets["haproxy"] = (f"http://127.0.0.1:{port}/", haproxy_gateway)
        envoy_gateway, envoy_token = gateway("envoy")
        envoy_port = free_port()
        processes.append(
            real.envoy_start(
                workdir=real.scratch_dir("bench-envoy-"),
                bootstrap=real.envoy_bootstrap(
                    node_id=envoy_gateway.slug,
                    token=envoy_token,
                    port=envoy_port,
                    admin_port=free_port(),
                    control_plane_port=control_plane.port,
                    clusters=servers,
                ),
            )
        )
        targets["envoy"] = (f"http://127.0.0.1:{envoy_port}/", None)
        traefik_gateway, traefik_token = gateway("traefik")
        traefik_port = free_port()
        processes.append(
            real.traefik_start(
                workdir=real.scratch_dir("bench-traefik-"),
                port=traefik_port,
                endpoint=f"{control_plane.url}/api/v1/gateways/self/traefik",
                token=traefik_token,
            )
        )
        targets["traefik"] = (f"http://127.0.0.1:{traefik_port}/", None)
        services.policies_republish(reason="cost")
        if "haproxy" in targets:
            services.policy_document_push(
                document_id=PolicyDocument.objects.filter(gateway__kind="haproxy").latest("version").id
            )
        for url, _ in targets.values():
            real.wait_for(lambda url=url: first_answer(url) == "llama-aws", timeout=30, what=url)

        cheap = "llama-aws"
        for _trial in range(options.trials):
            cheap = "llama-gcp" if cheap == "llama-aws" else "llama-aws"
            UnitCost.objects.filter(deployment__slug=cheap).update(effective_cost=Decimal("1.00"))
            UnitCost.objects.exclude(deployment__slug=cheap).update(effective_cost=Decimal("2.00"))
            started = time.perf_counter()
            services.policies_republish(reason="cost")
            pushed_gateway = targets.get("haproxy", (None, None))[1]
            if pushed_gateway is not None:
                latest = PolicyDocument.objects.filter(gateway=pushed_gateway).latest("version")
                services.policy_document_push(document_id=latest.id)
            # Every gateway is watched at once, from the same publish.
            with ThreadPoolExecutor(max_workers=len(targets)) as pool:
                futures = {
                    kind: pool.submit(time_until_follows, url, cheap, started)
                    for kind, (url, _) in targets.items()
                }
                for kind, future in futures.items():
                    results.setdefault(kind, []).append(future.result())
            time.sleep(0.2)
    finally:
        for process in processes:
            process.stop()
        control_plane.stop()
        backends.close()

    def p95(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]

    for kind, values in results.items():
        median = statistics.median(values)
        print(f"{kind}: median {median:.3f} s, p95 {p95(values):.3f} s over {len(values)} trials")
    if "haproxy" in results:
        report("propagation_haproxy_p95", p95(results["haproxy"]), "s", "<=", 1.0)
    else:
        print("BENCH propagation_haproxy_p95=nan s (target <= 1.0): FAIL")
    report("propagation_envoy_p95", p95(results["envoy"]), "s", "<=", POLL_SECONDS + 1.0)
    report("propagation_traefik_p95", p95(results["traefik"]), "s", "<=", POLL_SECONDS + 1.0)


if __name__ == "__main__":
    main()
