"""Create (or update) the demo company's dimension rows: cloud accounts, teams, models, deployments.

    python manage.py demo_seed [--seed 42]

Idempotent: rows are matched by slug (update_or_create), so running it twice changes nothing.
Must run before ingesting the demo exports, which resolve tags and resource ids to these rows.
"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand
from django.db import transaction

from attribution.demo.company import company_build, token_prices_per_1m
from attribution.models import (
    AllocationMethod,
    AllocationRule,
    CloudAccount,
    Deployment,
    IdlePolicy,
    PriceCard,
    PriceUnit,
    ServedModel,
    Team,
    validate_source_settings,
)

# Before any demo day: the cards are valid for the whole generated history.
PRICE_CARDS_VALID_FROM = dt.date(2024, 1, 1)


class Command(BaseCommand):
    help = "Create the demo company's cloud accounts, teams, models and deployments (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--seed", type=int, default=42, help="Must match the seed given to demo_exports.")

    @transaction.atomic
    def handle(self, *args, seed: int, **options) -> None:
        company = company_build(seed=seed)
        accounts = {}
        for spec in company.accounts:
            validate_source_settings(spec.source_settings)
            accounts[spec.slug], _ = CloudAccount.objects.update_or_create(
                slug=spec.slug,
                defaults={
                    "provider": spec.provider,
                    "name": spec.name,
                    "billing_currency": spec.currency,
                    "source_settings": spec.source_settings,
                },
            )
        for spec in company.teams:
            Team.objects.update_or_create(
                slug=spec.slug, defaults={"name": spec.name, "cost_center": spec.cost_center}
            )
        models = {}
        for spec in company.models:
            models[spec.slug], _ = ServedModel.objects.update_or_create(
                slug=spec.slug, defaults={"name": spec.name, "family": spec.family}
            )
        pool_rules = 0
        price_cards = 0
        for spec in company.deployments:
            deployment, _ = Deployment.objects.update_or_create(
                slug=spec.slug,
                defaults={
                    "model": models[spec.model],
                    "account": accounts[spec.account],
                    "provider": spec.provider,
                    "region": spec.region,
                    "accelerator": spec.accelerator,
                    "instance_type": spec.instance_type,
                    "pricing_mode": spec.pricing_mode,
                    "endpoint_url": spec.endpoint_url,
                    "capacity_rps": spec.capacity_rps,
                    "gpu_count": spec.gpu_count,
                    "residency_region": spec.residency,
                    "resource_id": spec.resource_id,
                },
            )
            # Per-token list prices: unit costs split a deployment's cost over input and output
            # tokens in their ratio, and estimates price usage with them before the bill lands.
            for unit, price in zip(
                (PriceUnit.INPUT_1M, PriceUnit.OUTPUT_1M), token_prices_per_1m(spec), strict=True
            ):
                if price is not None:
                    PriceCard.objects.update_or_create(
                        deployment=deployment,
                        unit=unit,
                        valid_from=PRICE_CARDS_VALID_FROM,
                        defaults={"price": price, "currency": accounts[spec.account].billing_currency},
                    )
                    price_cards += 1
            if spec.pool:
                # A shared GPU pool is split over the teams that used it, by GPU-seconds; a day
                # with no usage stays visible as idle capacity.
                AllocationRule.objects.update_or_create(
                    name=f"Shared pool {spec.pool}: {spec.slug}",
                    defaults={
                        "match_deployment": deployment,
                        "method": AllocationMethod.GPU_SECONDS,
                        "idle_policy": IdlePolicy.OWN_LINE,
                        "is_active": True,
                    },
                )
                pool_rules += 1
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo company ready: {len(company.accounts)} accounts, {len(company.teams)} teams, "
                f"{len(company.models)} models, {len(company.deployments)} deployments, "
                f"{pool_rules} shared-pool allocation rules, {price_cards} per-token price cards."
            )
        )
