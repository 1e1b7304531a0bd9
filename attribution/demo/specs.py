"""The shapes the demo company is described with (teams, models, accounts, deployments, the
date range) and the identifiers its accounts, projects, subscriptions and gateways carry. Plain
data and deterministic helpers; company.py and deployments.py fill them in."""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

AWS = "aws"
GCP = "gcp"
AZURE = "azure"

# Kinds of deployment: how it is billed and tagged.
MANAGED_ENDPOINT = "managed_endpoint"  # instance-hours of a managed endpoint, one team
MANAGED_PER_TOKEN = "managed_per_token"  # tokens of a managed API, one team
POOL = "pool"  # self-hosted node pool shared by several teams


def stable_hex(*parts: object, length: int = 32) -> str:
    """A hex string that depends only on `parts` (never on PYTHONHASHSEED or the clock)."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()
    while len(digest) < length:
        digest += hashlib.sha256(digest.encode()).hexdigest()
    return digest[:length]


def stable_uuid(*parts: object) -> str:
    # Shaped as a random (version 4) UUID, like the ids the providers hand out.
    return str(uuid.UUID(stable_hex(*parts, length=32), version=4))


@dataclass(frozen=True)
class TeamSpec:
    slug: str
    name: str
    cost_center: str


@dataclass(frozen=True)
class ModelSpec:
    slug: str
    name: str
    family: str


@dataclass(frozen=True)
class AccountSpec:
    slug: str
    provider: str
    name: str
    billing_account_id: str
    currency: str
    source_settings: dict


@dataclass(frozen=True)
class DeploymentSpec:
    slug: str
    provider: str
    account: str
    region: str
    model: str
    kind: str
    service: str  # sagemaker | bedrock | ec2 | vertex_endpoint | vertex_gemini | gke | aoai | aks | aml
    resource_id: str
    # (team slug, traffic weight). One team for managed endpoints, several for pools.
    teams: tuple[tuple[str, float], ...]
    reporter: str
    pricing_mode: str  # attribution.choices.PricingMode values
    instance_type: str = ""
    accelerator: str = ""
    instance_count: int = 0
    gpus_per_instance: int = 0
    # Price of one instance-hour on demand (list), in the account currency.
    on_demand_rate: Decimal = Decimal(0)
    # Tokens: list price per 1,000 tokens.
    input_price_per_1k: Decimal = Decimal(0)
    output_price_per_1k: Decimal = Decimal(0)
    pool: str = ""
    resource_name: str = ""
    # Traffic profile (peak requests per hour over all teams) and request shape.
    peak_requests_per_hour: int = 1000
    input_tokens_per_request: int = 800
    output_tokens_per_request: int = 250
    latency_median_ms: float = 600.0
    latency_sigma: float = 0.5
    error_rate: float = 0.003
    capacity_rps: Decimal | None = None
    residency: str = "us"
    endpoint_url: str = ""
    # Hours of the 15th of each month when the node is drained for upgrades (no usage, no cost).
    maintenance_hours: tuple[int, ...] = ()
    utc_offset_hours: int = -5
    # False for the untagged workloads (Company.untagged_workloads): billed with no owner tags and
    # never registered as deployments; their owner is kept here so suggestions can be scored.
    tagged: bool = True

    @property
    def gpu_count(self) -> int:
        return self.instance_count * self.gpus_per_instance

    @property
    def owner_team(self) -> str:
        return self.teams[0][0]

    def tags(self) -> dict[str, str]:
        """Tag values (unprefixed keys) exactly as the resource carries them."""
        if not self.tagged:
            return {}
        if self.kind == POOL:
            return {"deployment": self.slug, "pool": self.pool}
        return {"team": self.owner_team, "model": self.model, "deployment": self.slug}

    def is_down(self, day: dt.date, hour: int) -> bool:
        return day.day == 15 and hour in self.maintenance_hours


@dataclass(frozen=True)
class Company:
    seed: int
    teams: tuple[TeamSpec, ...]
    models: tuple[ModelSpec, ...]
    accounts: tuple[AccountSpec, ...]
    deployments: tuple[DeploymentSpec, ...]
    aws_member_accounts: dict[str, str] = field(default_factory=dict)
    # Workloads someone launched without tags (a canary, a backfill, a batch account): billed, not
    # registered as deployments, no gateway usage. Their true owner is `teams[0]` and `model`.
    untagged_workloads: tuple[DeploymentSpec, ...] = ()

    def account(self, provider: str) -> AccountSpec:
        return next(account for account in self.accounts if account.provider == provider)

    def deployments_of(self, provider: str) -> list[DeploymentSpec]:
        return [deployment for deployment in self.deployments if deployment.provider == provider]

    def untagged_of(self, provider: str) -> list[DeploymentSpec]:
        return [workload for workload in self.untagged_workloads if workload.provider == provider]

    def true_owners(self) -> dict[str, tuple[str, str | None]]:
        """Resource id -> (team, model) of every untagged resource; platform cost belongs to
        `platform` (no model). What bench/suggestions.py scores the suggestions against."""
        owners: dict[str, tuple[str, str | None]] = {
            workload.resource_id: (workload.owner_team, workload.model)
            for workload in self.untagged_workloads
        }
        return owners


@dataclass(frozen=True)
class DemoRange:
    """Days covered by the exports: from the first day of the month that `days` back reaches, to
    `end` inclusive. Closed months are complete; the month of `end` is month-to-date, as a real
    export delivered the next morning would be."""

    start: dt.date
    end: dt.date

    @classmethod
    def ending(cls, *, end: dt.date, days: int) -> DemoRange:
        first = end - dt.timedelta(days=max(days, 1) - 1)
        return cls(start=first.replace(day=1), end=end)

    def months(self) -> list[dt.date]:
        months = []
        month = self.start.replace(day=1)
        while month <= self.end:
            months.append(month)
            month = month_after(month)
        return months

    def days_of(self, month: dt.date) -> list[dt.date]:
        last = min(month_end(month), self.end)
        return [month + dt.timedelta(days=offset) for offset in range((last - month).days + 1)]

    def is_closed(self, month: dt.date) -> bool:
        return month_end(month) <= self.end


def month_after(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def month_end(month: dt.date) -> dt.date:
    """Last day of the month."""
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


# --- identifiers of the company's accounts and gateways ---------------------------------------

AWS_PAYER = "123456789012"
AWS_ML_ACCOUNT = "345678901234"
AWS_PLATFORM_ACCOUNT = "456789012345"
GCP_BILLING_ACCOUNT = "01ABCD-234567-89EF01"
GCP_ML_PROJECT = "acme-ml-prod"
GCP_PLATFORM_PROJECT = "acme-platform"
AZURE_BILLING_ACCOUNT = "5e98e158-xxxx-xxxx-xxxx-xxxxxxxxxxxx:acme-mca_2019-05-31"
AZURE_SUBSCRIPTION_ML = "3f2a9c41-7d5e-4b8a-9c1f-2e6d8b4a7c90"
AZURE_SUBSCRIPTION_PLATFORM = "8b1e6d02-4c9a-4f3e-a7d5-91c2f0e4b6a3"

GATEWAY_ENVOY = "gw-envoy-prod"
GATEWAY_LITELLM = "gw-litellm-prod"
