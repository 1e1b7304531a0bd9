"""With a real Celery worker on Redis: gateway usage posted through the API is rolled up, its day
re-estimated and the budget evaluated without anyone calling governance, so the team's block is in
force and its lease refused seconds later (bench/enforcement.py times this path)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from attribution.models import Deployment, PriceCard
from governance.lease_services import lease_request
from governance.models import BudgetEnforcement, BudgetThreshold
from routing.models import Gateway
from routing.services import gateway_token_rotate
from tests.celery_worker import celery_worker_process, wait_for
from tests.factories import BudgetFactory, ServedModelFactory, TeamFactory

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def test_usage_over_a_block_threshold_blocks_the_team_through_the_worker(tmp_path):
    team, model = TeamFactory(slug="search"), ServedModelFactory(slug="llama")
    deployment = Deployment.objects.create(
        slug="llama-bedrock",
        model=model,
        provider="aws",
        region="us-east-1",
        pricing_mode="managed_per_token",
    )
    since = dt.date.today() - dt.timedelta(days=30)
    PriceCard.objects.create(
        deployment=deployment, unit="1m_input_tokens", price=Decimal("10"), valid_from=since
    )
    budget = BudgetFactory(team=team, amount=Decimal("5"))
    BudgetThreshold.objects.create(budget=budget, percent=Decimal("100"), action="block")
    assert lease_request(holder="gateway:edge", amount=Decimal("1"), budget_id=budget.pk).granted == 1
    token = gateway_token_rotate(
        gateway=Gateway.objects.create(name="edge", slug="edge", kind="envoy"), actor=None
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    minute = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    log = tmp_path / "worker.log"
    with celery_worker_process(log) as worker:
        response = client.post(
            "/api/v1/usage",
            {
                "batch_id": "b1",
                "records": [
                    {
                        "bucket_start": minute.isoformat().replace("+00:00", "Z"),
                        "bucket_seconds": 60,
                        "deployment": "llama-bedrock",
                        "team": "search",
                        "model": "llama",
                        "requests": 10,
                        "input_tokens": 600_000,
                    }
                ],
            },  # fmt: skip
            format="json",
        )
        assert response.status_code in (200, 201, 202), response.content
        block = wait_for(
            lambda: BudgetEnforcement.objects.filter(
                budget=budget, action="block", lifted_at__isnull=True
            ).first(),
            what="the block action",
            process=worker,
            log_path=log,
        )
    assert "6.00 USD" in block.reason  # 600k input tokens at $10 / 1M, estimated
    refused = lease_request(holder="gateway:edge", amount=Decimal("1"), budget_id=budget.pk)
    assert (refused.granted, refused.blocked) == (Decimal("0"), True)
