"""`make demo`'s routing: one HAProxy in front of stub backends for one model.

manage.py routing_demo prepare --out .data/demo [--model llama-3-1-70b-instruct]
    writes haproxy.cfg and backends.txt, points the model's deployments at the stubs, gives
    them routing profiles (capacity, a spot pair, latencies) and creates the `demo-haproxy`
    gateway (runtime API push, state file);
manage.py routing_demo story
    publishes weights from the demo's unit costs and pushes them to HAProxy, then plays what
    the Routing page explains: a deployment failing and restored, a spot interruption notice,
    a budget reroute applied and lifted. Each step is a new document with its reason.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from attribution.models import Deployment, ServedModel, Team
from routing import services
from routing.adapters import PushError
from routing.choices import HealthSource, PublishReason
from routing.models import DeploymentRouting, Gateway, PolicyDocument, RouteLatency, RoutingPolicy
from routing.selectors import EnforcementView

FRONTEND_PORT = 18080
RUNTIME_PORT = 18099
BACKEND_BASE_PORT = 18101
GATEWAY = "demo-haproxy"


class Command(BaseCommand):
    help = "Set up (prepare) and play (story) the demo's HAProxy routing for one model."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("step", choices=["prepare", "story"])
        parser.add_argument("--out", default=".data/demo", help="Where haproxy.cfg and backends.txt go")
        parser.add_argument("--model", default="llama-3-1-70b-instruct")

    def handle(self, *args, step: str, out: str, model: str, **options) -> None:
        served = ServedModel.objects.filter(slug=model).first()
        if served is None:
            raise CommandError(f"No model {model!r}: run `manage.py demo_seed` first.")
        if step == "prepare":
            self.prepare(served, Path(out))
        else:
            self.story(served)

    @transaction.atomic
    def prepare(self, model: ServedModel, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        deployments = list(Deployment.objects.filter(model=model).order_by("slug"))
        servers = []
        on_demand = next((d for d in deployments if d.pricing_mode == "on_demand"), None)
        for index, deployment in enumerate(deployments):
            port = BACKEND_BASE_PORT + index
            deployment.endpoint_url = f"http://127.0.0.1:{port}"
            deployment.save(update_fields=["endpoint_url"])
            capacity = Decimal(deployment.capacity_rps or 10) * 1050  # tokens per request in the demo
            DeploymentRouting.objects.update_or_create(
                deployment=deployment,
                defaults={
                    "capacity_tps": capacity,
                    "spot_pair": on_demand if deployment.pricing_mode == "spot" else None,
                    "health": "healthy",
                    "restore_cap": None,
                },
            )
            RouteLatency.objects.update_or_create(
                deployment=deployment,
                origin="",
                defaults={"p95_ms": 1200 + 150 * index, "reported_by": "demo"},
            )
            servers.append((deployment.slug, port))
        RoutingPolicy.objects.update_or_create(
            model=model,
            defaults={
                "objective": "cheapest_within_slo",
                "latency_slo_ms": 2500,
                "min_share_per_provider": Decimal("0.05"),
                "max_share_per_deployment": Decimal("0.6"),
                "max_step": Decimal("0.5"),
                "hysteresis": Decimal("0.02"),
            },
        )
        gateway, _ = Gateway.objects.update_or_create(
            slug=GATEWAY,
            defaults={
                "name": "Demo HAProxy",
                "kind": "haproxy",
                "origin_provider": "aws",
                "origin_region": "us-east-1",
                "push_settings": {
                    "runtime_api": f"127.0.0.1:{RUNTIME_PORT}",
                    "state_file": str((out / "haproxy.state").resolve()),
                },
            },
        )
        gateway.served_models.set([model])
        (out / "backends.txt").write_text("".join(f"{slug} {port}\n" for slug, port in servers))
        lines = [
            "global",
            f"    stats socket ipv4@127.0.0.1:{RUNTIME_PORT} level admin",
            f"    server-state-file {(out / 'haproxy.state').resolve()}",
            "defaults",
            "    mode http",
            "    timeout connect 2s",
            "    timeout client 10s",
            "    timeout server 10s",
            "    load-server-state-from-file global",
            "frontend demo",
            f"    bind 127.0.0.1:{FRONTEND_PORT}",
            f"    default_backend {model.slug}",
            f"backend {model.slug}",
            "    balance roundrobin",
            *[f"    server {slug} 127.0.0.1:{port} weight 1" for slug, port in servers],
        ]
        (out / "haproxy.cfg").write_text("\n".join(lines) + "\n")
        self.stdout.write(
            f"HAProxy config for {len(servers)} deployments of {model.slug} in {out}/haproxy.cfg"
        )

    def story(self, model: ServedModel) -> None:
        gateway = Gateway.objects.get(slug=GATEWAY)
        self.publish(gateway, PublishReason.COST, "weights from the demo's unit costs")
        deployments = list(Deployment.objects.filter(model=model, routing__isnull=False).order_by("slug"))
        weights = self.weights(gateway)
        busiest = max(deployments, key=lambda d: weights.get(d.slug, 0))
        services.deployment_health_report(
            deployment=busiest, healthy=False, source=HealthSource.PROBE, reason="demo: probe got HTTP 503"
        )
        self.publish(gateway, PublishReason.HEALTH, f"{busiest.slug} failing: HTTP 503")
        services.deployment_health_report(
            deployment=busiest, healthy=True, source=HealthSource.PROBE, reason="demo: probe OK"
        )
        self.publish(gateway, PublishReason.HEALTH, f"{busiest.slug} healthy again: restoring gradually")
        spot = next((d for d in deployments if d.pricing_mode == "spot"), None)
        if spot is not None:
            services.deployment_spot_notice(
                deployment=spot, source="demo", reason="demo: 2-minute interruption notice"
            )
            self.publish(gateway, PublishReason.SPOT_NOTICE, f"spot notice for {spot.slug}")
        team = Team.objects.order_by("name").first()
        if team is not None:
            reroute = [
                EnforcementView(
                    0, team.id, model.id, busiest.provider, "reroute", None, "demo budget at 100%"
                )
            ]
            services.routes_evaluate(model=model, enforcement=reroute)
            self.publish(gateway, PublishReason.BUDGET_ACTION, f"{team.name} over budget: rerouted", reroute)
            services.routes_evaluate(model=model, enforcement=[])
            self.publish(gateway, PublishReason.BUDGET_ACTION, f"{team.name} reroute lifted", [])
        self.stdout.write(f"HAProxy now routes {model.slug}: {self.weights(gateway)}")

    def publish(self, gateway: Gateway, reason: str, detail: str, enforcement: list | None = None) -> None:
        if enforcement is None:
            services.policies_republish(reason=reason, reason_detail=detail)
        else:
            services.policy_document_publish(
                gateway=gateway, reason=reason, reason_detail=detail, enforcement=enforcement
            )
        document = PolicyDocument.objects.filter(gateway=gateway).latest("version")
        try:
            services.policy_document_push(document_id=document.id)
        except PushError as error:
            self.stderr.write(f"push of v{document.version} failed: {error}")
        self.stdout.write(f"v{document.version} ({reason}): {detail}")

    @staticmethod
    def weights(gateway: Gateway) -> dict[str, int]:
        document = PolicyDocument.objects.filter(gateway=gateway).latest("version")
        model = next(iter(document.content["models"].values()))
        return next(r["weights"] for r in model["routes"] if r["class"] == "realtime" and r["team"] is None)
