"""Acme, the fictional company of the demo: teams, served models, cloud accounts and deployments.

The description is static and plain data; the seed only varies the numbers drawn from it (traffic,
spot prices, identifiers), never the set of slugs, so `demo_seed` and the exports always agree.

Tagging follows what a real company tags:
- managed endpoints (SageMaker, Bedrock inference profiles, Vertex endpoints and Gemini request
  labels, Azure OpenAI accounts, Azure ML online endpoints) carry team + model + deployment;
- self-hosted GPU pools (EKS/GKE/AKS node pools) are shared by several teams, so they carry only
  deployment + pool, and the split between teams comes from gateway usage;
- platform cost (storage, networking, logging, cluster fees) carries no tag at all.

Tag keys per provider: AWS `user:team`, `user:model`, `user:deployment`, `user:pool` (the
`resource_tags` map of CUR 2.0); Google Cloud labels `team`, `model`, `deployment`, `pool`;
Azure tags `team`, `model`, `deployment`, `pool`. Values are the slugs.
"""

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

    @property
    def gpu_count(self) -> int:
        return self.instance_count * self.gpus_per_instance

    @property
    def owner_team(self) -> str:
        return self.teams[0][0]

    def tags(self) -> dict[str, str]:
        """Tag values (unprefixed keys) exactly as the resource carries them."""
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

    def account(self, provider: str) -> AccountSpec:
        return next(account for account in self.accounts if account.provider == provider)

    def deployments_of(self, provider: str) -> list[DeploymentSpec]:
        return [deployment for deployment in self.deployments if deployment.provider == provider]


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


# --- the company ----------------------------------------------------------------------------------

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

TEAMS = (
    TeamSpec("search", "Search", "CC-1100"),
    TeamSpec("assistant", "Assistant", "CC-1200"),
    TeamSpec("ads-ranking", "Ads Ranking", "CC-1300"),
    TeamSpec("support-bot", "Support Bot", "CC-1400"),
    TeamSpec("fraud", "Fraud", "CC-1500"),
    TeamSpec("recsys", "Recommendations", "CC-1600"),
    TeamSpec("platform", "Platform", "CC-0100"),
    TeamSpec("research", "Research", "CC-2000"),
)

MODELS = (
    ModelSpec("llama-3-1-70b-instruct", "Llama 3.1 70B Instruct", "llama"),
    ModelSpec("llama-3-1-8b-instruct", "Llama 3.1 8B Instruct", "llama"),
    ModelSpec("mistral-large", "Mistral Large", "mistral"),
    ModelSpec("mixtral-8x7b-instruct", "Mixtral 8x7B Instruct", "mistral"),
    ModelSpec("gemini-1-5-pro", "Gemini 1.5 Pro", "gemini"),
    ModelSpec("gemini-1-5-flash", "Gemini 1.5 Flash", "gemini"),
    ModelSpec("gpt-4o", "GPT-4o (Azure OpenAI)", "gpt"),
    ModelSpec("gpt-4o-mini", "GPT-4o mini (Azure OpenAI)", "gpt"),
    ModelSpec("bge-large-en-v1-5", "BGE Large EN v1.5 (embeddings)", "embeddings"),
    ModelSpec("text-embedding-3-large", "text-embedding-3-large (Azure OpenAI)", "embeddings"),
    ModelSpec("bge-reranker-large", "BGE Reranker Large", "reranker"),
    ModelSpec("whisper-large-v3", "Whisper Large v3", "speech"),
)

# Reference list prices per 1M (input, output) tokens, USD, of models the demo serves on its own
# instances: the serverless offerings of the same open models (Azure AI / Bedrock, 2024). Output
# is priced above input, as every provider prices generation; embedding and reranking models
# produce no output tokens (no output price). Whisper is priced per audio minute: no token card.
# Managed APIs (Bedrock, Vertex, Azure OpenAI) use their own list price from DeploymentSpec.
REFERENCE_PRICES_PER_1M_TOKENS: dict[str, tuple[Decimal, Decimal | None]] = {
    "llama-3-1-70b-instruct": (Decimal("2.68"), Decimal("3.54")),
    "llama-3-1-8b-instruct": (Decimal("0.30"), Decimal("0.61")),
    "mistral-large": (Decimal("2.00"), Decimal("6.00")),
    "mixtral-8x7b-instruct": (Decimal("0.45"), Decimal("0.70")),
    "gemini-1-5-pro": (Decimal("1.25"), Decimal("5.00")),
    "gemini-1-5-flash": (Decimal("0.075"), Decimal("0.30")),
    "gpt-4o": (Decimal("2.50"), Decimal("10.00")),
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
    "bge-large-en-v1-5": (Decimal("0.02"), None),
    "text-embedding-3-large": (Decimal("0.13"), None),
    "bge-reranker-large": (Decimal("0.05"), None),
}


def token_prices_per_1m(spec: DeploymentSpec) -> tuple[Decimal | None, Decimal | None]:
    """The (input, output) price per 1M tokens of a deployment's price cards; None = no card."""
    if spec.input_price_per_1k or spec.output_price_per_1k:
        return spec.input_price_per_1k * 1000 or None, spec.output_price_per_1k * 1000 or None
    return REFERENCE_PRICES_PER_1M_TOKENS.get(spec.model, (None, None))


def _accounts() -> tuple[AccountSpec, ...]:
    gcp_table_suffix = GCP_BILLING_ACCOUNT.replace("-", "_")
    return (
        AccountSpec(
            slug="aws-prod",
            provider=AWS,
            name="Acme AWS (payer 123456789012)",
            billing_account_id=AWS_PAYER,
            currency="USD",
            source_settings={
                "format": "cur2",
                "bucket": "acme-billing-exports",
                "prefix": "cur2",
                "export_name": "acme-cur2-daily",
                "region": "us-east-1",
                "credentials": "ambient",
            },
        ),
        AccountSpec(
            slug="gcp-prod",
            provider=GCP,
            name="Acme Google Cloud (billing account 01ABCD-234567-89EF01)",
            billing_account_id=GCP_BILLING_ACCOUNT,
            currency="USD",
            source_settings={
                "format": "bigquery_resource_v1",
                "billing_account_id": GCP_BILLING_ACCOUNT,
                "table": f"acme-billing.billing_export.gcp_billing_export_resource_v1_{gcp_table_suffix}",
                "location": "US",
                "credentials": "ambient",
            },
        ),
        AccountSpec(
            slug="azure-prod",
            provider=AZURE,
            name="Acme Azure (MCA billing profile ACME-PROD)",
            billing_account_id=AZURE_BILLING_ACCOUNT,
            currency="USD",
            source_settings={
                "format": "azure_cost_details_mca",
                "storage_account": "acmecostexports",
                "container": "cost-exports",
                "directory": "mca/acme-prod",
                "actual_export_name": "acme-actual-cost",
                "amortized_export_name": "acme-amortized-cost",
                "billing_account_id": AZURE_BILLING_ACCOUNT,
                "billing_profile_id": "K7QX-3RTD-BG7-PGB",
                "credentials": "ambient",
            },
        ),
    )


def _sagemaker_arn(region: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{AWS_ML_ACCOUNT}:endpoint/{name}"


def _azure_id(resource_group: str, provider_path: str) -> str:
    return f"/subscriptions/{AZURE_SUBSCRIPTION_ML}/resourceGroups/{resource_group}/providers/{provider_path}"


def _deployments(seed: int) -> tuple[DeploymentSpec, ...]:
    def instance_id(slug: str) -> str:
        return "i-0" + stable_hex(seed, "instance", slug, length=16)

    def gce_id(slug: str) -> str:
        return str(int(stable_hex(seed, "gce", slug, length=15), 16) % 10**19)

    D = DeploymentSpec
    Dec = Decimal
    return (
        # --- AWS: SageMaker endpoints (one team each) ---------------------------------------------
        D(
            "aws-use1-llama70b-sagemaker",
            AWS,
            "aws-prod",
            "us-east-1",
            "llama-3-1-70b-instruct",
            MANAGED_ENDPOINT,
            "sagemaker",
            _sagemaker_arn("us-east-1", "llama-3-1-70b-search"),
            (("search", 1.0),),
            GATEWAY_ENVOY,
            "on_demand",
            "ml.p4d.24xlarge",
            "nvidia-a100-40gb",
            1,
            8,
            Dec("37.688"),
            peak_requests_per_hour=26000,
            input_tokens_per_request=1400,
            output_tokens_per_request=300,
            latency_median_ms=1900,
            capacity_rps=Dec("9"),
            endpoint_url="https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/llama-3-1-70b-search/invocations",
        ),
        D(
            "aws-usw2-llama70b-sagemaker",
            AWS,
            "aws-prod",
            "us-west-2",
            "llama-3-1-70b-instruct",
            MANAGED_ENDPOINT,
            "sagemaker",
            _sagemaker_arn("us-west-2", "llama-3-1-70b-ads"),
            (("ads-ranking", 1.0),),
            GATEWAY_ENVOY,
            "on_demand",
            "ml.p4d.24xlarge",
            "nvidia-a100-40gb",
            1,
            8,
            Dec("37.688"),
            peak_requests_per_hour=18000,
            input_tokens_per_request=900,
            output_tokens_per_request=120,
            latency_median_ms=1500,
            capacity_rps=Dec("9"),
            utc_offset_hours=-8,
            endpoint_url="https://runtime.sagemaker.us-west-2.amazonaws.com/endpoints/llama-3-1-70b-ads/invocations",
        ),
        D(
            "aws-usw2-llama8b-sagemaker",
            AWS,
            "aws-prod",
            "us-west-2",
            "llama-3-1-8b-instruct",
            MANAGED_ENDPOINT,
            "sagemaker",
            _sagemaker_arn("us-west-2", "llama-3-1-8b-support"),
            (("support-bot", 1.0),),
            GATEWAY_ENVOY,
            "on_demand",
            "ml.g5.2xlarge",
            "nvidia-a10g",
            2,
            1,
            Dec("1.515"),
            peak_requests_per_hour=30000,
            input_tokens_per_request=700,
            output_tokens_per_request=180,
            latency_median_ms=450,
            capacity_rps=Dec("14"),
            utc_offset_hours=-8,
        ),
        D(
            "aws-use1-bge-sagemaker",
            AWS,
            "aws-prod",
            "us-east-1",
            "bge-large-en-v1-5",
            MANAGED_ENDPOINT,
            "sagemaker",
            _sagemaker_arn("us-east-1", "bge-large-recsys"),
            (("recsys", 1.0),),
            GATEWAY_ENVOY,
            "on_demand",
            "ml.g5.xlarge",
            "nvidia-a10g",
            1,
            1,
            Dec("1.408"),
            peak_requests_per_hour=90000,
            input_tokens_per_request=220,
            output_tokens_per_request=0,
            latency_median_ms=45,
            latency_sigma=0.4,
            capacity_rps=Dec("40"),
        ),
        D(
            "aws-euw1-reranker-sagemaker",
            AWS,
            "aws-prod",
            "eu-west-1",
            "bge-reranker-large",
            MANAGED_ENDPOINT,
            "sagemaker",
            _sagemaker_arn("eu-west-1", "bge-reranker-search-eu"),
            (("search", 1.0),),
            GATEWAY_ENVOY,
            "on_demand",
            "ml.g5.xlarge",
            "nvidia-a10g",
            1,
            1,
            Dec("1.5813"),
            peak_requests_per_hour=40000,
            input_tokens_per_request=900,
            output_tokens_per_request=0,
            latency_median_ms=80,
            latency_sigma=0.4,
            capacity_rps=Dec("20"),
            residency="eu",
            utc_offset_hours=1,
        ),
        D(
            "aws-use1-whisper-sagemaker",
            AWS,
            "aws-prod",
            "us-east-1",
            "whisper-large-v3",
            MANAGED_ENDPOINT,
            "sagemaker",
            _sagemaker_arn("us-east-1", "whisper-large-v3-assistant"),
            (("assistant", 1.0),),
            GATEWAY_ENVOY,
            "on_demand",
            "ml.g5.4xlarge",
            "nvidia-a10g",
            1,
            1,
            Dec("2.03"),
            peak_requests_per_hour=3000,
            input_tokens_per_request=0,
            output_tokens_per_request=400,
            latency_median_ms=2600,
            capacity_rps=Dec("2"),
        ),
        D(
            "aws-euw1-whisper-sagemaker",
            AWS,
            "aws-prod",
            "eu-west-1",
            "whisper-large-v3",
            MANAGED_ENDPOINT,
            "sagemaker",
            _sagemaker_arn("eu-west-1", "whisper-large-v3-support-eu"),
            (("support-bot", 1.0),),
            GATEWAY_ENVOY,
            "on_demand",
            "ml.g5.2xlarge",
            "nvidia-a10g",
            1,
            1,
            Dec("1.7018"),
            peak_requests_per_hour=1800,
            input_tokens_per_request=0,
            output_tokens_per_request=350,
            latency_median_ms=2900,
            capacity_rps=Dec("1.5"),
            residency="eu",
            utc_offset_hours=1,
        ),
        # --- AWS: Bedrock application inference profile (per token) -------------------------------
        D(
            "aws-use1-mistral-large-bedrock",
            AWS,
            "aws-prod",
            "us-east-1",
            "mistral-large",
            MANAGED_PER_TOKEN,
            "bedrock",
            f"arn:aws:bedrock:us-east-1:{AWS_ML_ACCOUNT}:application-inference-profile/"
            + stable_hex(seed, "bedrock", length=12),
            (("assistant", 1.0),),
            GATEWAY_LITELLM,
            "managed_per_token",
            input_price_per_1k=Dec("0.002"),
            output_price_per_1k=Dec("0.006"),
            peak_requests_per_hour=9000,
            input_tokens_per_request=1600,
            output_tokens_per_request=350,
            latency_median_ms=2200,
        ),
        # --- AWS: EKS GPU node pools (shared) -----------------------------------------------------
        D(
            "aws-use1-llama70b-eks-p5",
            AWS,
            "aws-prod",
            "us-east-1",
            "llama-3-1-70b-instruct",
            POOL,
            "ec2",
            instance_id("aws-use1-llama70b-eks-p5"),
            (("search", 0.45), ("assistant", 0.35), ("research", 0.20)),
            GATEWAY_ENVOY,
            "reserved",
            "p5.48xlarge",
            "nvidia-h100-80gb",
            1,
            8,
            Dec("98.32"),
            pool="eks-use1-p5",
            peak_requests_per_hour=80000,
            input_tokens_per_request=1500,
            output_tokens_per_request=320,
            latency_median_ms=1400,
            capacity_rps=Dec("28"),
        ),
        D(
            "aws-usw2-llama70b-eks-p4d-spot",
            AWS,
            "aws-prod",
            "us-west-2",
            "llama-3-1-70b-instruct",
            POOL,
            "ec2",
            instance_id("aws-usw2-llama70b-eks-p4d-spot"),
            (("assistant", 0.6), ("ads-ranking", 0.4)),
            GATEWAY_ENVOY,
            "spot",
            "p4d.24xlarge",
            "nvidia-a100-40gb",
            1,
            8,
            Dec("32.7726"),
            pool="eks-usw2-p4d-spot",
            peak_requests_per_hour=24000,
            input_tokens_per_request=1200,
            output_tokens_per_request=260,
            latency_median_ms=2100,
            capacity_rps=Dec("9"),
            utc_offset_hours=-8,
        ),
        D(
            "aws-use1-mixtral-eks-g5",
            AWS,
            "aws-prod",
            "us-east-1",
            "mixtral-8x7b-instruct",
            POOL,
            "ec2",
            instance_id("aws-use1-mixtral-eks-g5"),
            (("support-bot", 0.55), ("fraud", 0.45)),
            GATEWAY_ENVOY,
            "reserved",
            "g5.12xlarge",
            "nvidia-a10g",
            1,
            4,
            Dec("5.672"),
            pool="eks-use1-g5",
            peak_requests_per_hour=14000,
            input_tokens_per_request=900,
            output_tokens_per_request=200,
            latency_median_ms=1100,
            capacity_rps=Dec("5"),
        ),
        D(
            "aws-use1-llama8b-eks-g5",
            AWS,
            "aws-prod",
            "us-east-1",
            "llama-3-1-8b-instruct",
            POOL,
            "ec2",
            instance_id("aws-use1-llama8b-eks-g5"),
            (("fraud", 0.5), ("recsys", 0.3), ("support-bot", 0.2)),
            GATEWAY_ENVOY,
            "reserved",
            "g5.12xlarge",
            "nvidia-a10g",
            1,
            4,
            Dec("5.672"),
            pool="eks-use1-g5",
            peak_requests_per_hour=36000,
            input_tokens_per_request=600,
            output_tokens_per_request=120,
            latency_median_ms=380,
            capacity_rps=Dec("14"),
        ),
        D(
            "aws-euw1-llama8b-eks-g5-spot",
            AWS,
            "aws-prod",
            "eu-west-1",
            "llama-3-1-8b-instruct",
            POOL,
            "ec2",
            instance_id("aws-euw1-llama8b-eks-g5-spot"),
            (("support-bot", 0.6), ("search", 0.4)),
            GATEWAY_ENVOY,
            "spot",
            "g5.2xlarge",
            "nvidia-a10g",
            2,
            1,
            Dec("1.3574"),
            pool="eks-euw1-g5-spot",
            peak_requests_per_hour=20000,
            input_tokens_per_request=650,
            output_tokens_per_request=150,
            latency_median_ms=420,
            capacity_rps=Dec("10"),
            residency="eu",
            utc_offset_hours=1,
        ),
        D(
            "aws-usw2-bge-eks-g5-spot",
            AWS,
            "aws-prod",
            "us-west-2",
            "bge-large-en-v1-5",
            POOL,
            "ec2",
            instance_id("aws-usw2-bge-eks-g5-spot"),
            (("recsys", 0.5), ("ads-ranking", 0.3), ("search", 0.2)),
            GATEWAY_ENVOY,
            "spot",
            "g5.xlarge",
            "nvidia-a10g",
            2,
            1,
            Dec("1.006"),
            pool="eks-usw2-g5-spot",
            peak_requests_per_hour=120000,
            input_tokens_per_request=250,
            output_tokens_per_request=0,
            latency_median_ms=40,
            latency_sigma=0.4,
            capacity_rps=Dec("60"),
            utc_offset_hours=-8,
        ),
        # --- Google Cloud: Vertex AI Gemini (per token; request labels carry the team) -----------
        D(
            "gcp-usc1-gemini-pro-vertex",
            GCP,
            "gcp-prod",
            "us-central1",
            "gemini-1-5-pro",
            MANAGED_PER_TOKEN,
            "vertex_gemini",
            f"//aiplatform.googleapis.com/projects/{GCP_ML_PROJECT}/locations/us-central1/publishers/google/"
            "models/gemini-1.5-pro-002",
            (("assistant", 1.0),),
            GATEWAY_LITELLM,
            "managed_per_token",
            input_price_per_1k=Dec("0.00125"),
            output_price_per_1k=Dec("0.005"),
            resource_name="gemini-1.5-pro-002",
            peak_requests_per_hour=16000,
            input_tokens_per_request=2400,
            output_tokens_per_request=400,
            latency_median_ms=2400,
            utc_offset_hours=-6,
        ),
        D(
            "gcp-usc1-gemini-flash-vertex",
            GCP,
            "gcp-prod",
            "us-central1",
            "gemini-1-5-flash",
            MANAGED_PER_TOKEN,
            "vertex_gemini",
            f"//aiplatform.googleapis.com/projects/{GCP_ML_PROJECT}/locations/us-central1/publishers/google/"
            "models/gemini-1.5-flash-002",
            (("support-bot", 1.0),),
            GATEWAY_LITELLM,
            "managed_per_token",
            input_price_per_1k=Dec("0.000075"),
            output_price_per_1k=Dec("0.0003"),
            resource_name="gemini-1.5-flash-002",
            peak_requests_per_hour=60000,
            input_tokens_per_request=1800,
            output_tokens_per_request=260,
            latency_median_ms=700,
            utc_offset_hours=-6,
        ),
        D(
            "gcp-euw4-gemini-pro-vertex",
            GCP,
            "gcp-prod",
            "europe-west4",
            "gemini-1-5-pro",
            MANAGED_PER_TOKEN,
            "vertex_gemini",
            f"//aiplatform.googleapis.com/projects/{GCP_ML_PROJECT}/locations/europe-west4/publishers/google/"
            "models/gemini-1.5-pro-002",
            (("ads-ranking", 1.0),),
            GATEWAY_LITELLM,
            "managed_per_token",
            input_price_per_1k=Dec("0.00125"),
            output_price_per_1k=Dec("0.005"),
            resource_name="gemini-1.5-pro-002",
            peak_requests_per_hour=7000,
            input_tokens_per_request=1900,
            output_tokens_per_request=300,
            latency_median_ms=2300,
            residency="eu",
            utc_offset_hours=1,
        ),
        # --- Google Cloud: Vertex AI online prediction endpoints ---------------------------------
        D(
            "gcp-usc1-llama70b-vertex-endpoint",
            GCP,
            "gcp-prod",
            "us-central1",
            "llama-3-1-70b-instruct",
            MANAGED_ENDPOINT,
            "vertex_endpoint",
            f"//aiplatform.googleapis.com/projects/{GCP_ML_PROJECT}/locations/us-central1/endpoints/"
            + str(int(stable_hex(seed, "vertex-llama", length=15), 16) % 10**19),
            (("research", 1.0),),
            GATEWAY_ENVOY,
            "on_demand",
            "a2-highgpu-8g",
            "nvidia-a100-40gb",
            1,
            8,
            Dec("35.3256"),
            resource_name="llama-3-1-70b-research",
            peak_requests_per_hour=9000,
            input_tokens_per_request=2000,
            output_tokens_per_request=500,
            latency_median_ms=2600,
            capacity_rps=Dec("8"),
            utc_offset_hours=-6,
        ),
        D(
            "gcp-usc1-reranker-vertex-endpoint",
            GCP,
            "gcp-prod",
            "us-central1",
            "bge-reranker-large",
            MANAGED_ENDPOINT,
            "vertex_endpoint",
            f"//aiplatform.googleapis.com/projects/{GCP_ML_PROJECT}/locations/us-central1/endpoints/"
            + str(int(stable_hex(seed, "vertex-reranker", length=15), 16) % 10**19),
            (("ads-ranking", 1.0),),
            GATEWAY_ENVOY,
            "on_demand",
            "n1-standard-8",
            "nvidia-tesla-t4",
            2,
            1,
            Dec("0.8398"),
            resource_name="bge-reranker-ads",
            peak_requests_per_hour=50000,
            input_tokens_per_request=700,
            output_tokens_per_request=0,
            latency_median_ms=70,
            latency_sigma=0.4,
            capacity_rps=Dec("25"),
            utc_offset_hours=-6,
        ),
        # --- Google Cloud: GKE GPU node pools (shared) ---------------------------------------------
        D(
            "gcp-usc1-llama70b-gke-a3",
            GCP,
            "gcp-prod",
            "us-central1",
            "llama-3-1-70b-instruct",
            POOL,
            "gke",
            f"//compute.googleapis.com/projects/{GCP_ML_PROJECT}/zones/us-central1-a/instances/"
            + gce_id("gcp-usc1-llama70b-gke-a3"),
            (("search", 0.4), ("research", 0.35), ("assistant", 0.25)),
            GATEWAY_ENVOY,
            "reserved",
            "a3-highgpu-8g",
            "nvidia-h100-80gb",
            1,
            8,
            Dec("88.2523"),
            pool="gke-usc1-a3",
            resource_name="gke-ml-serving-usc1-a3-pool-" + stable_hex(seed, "a3", length=8) + "-x7k2",
            peak_requests_per_hour=75000,
            input_tokens_per_request=1500,
            output_tokens_per_request=320,
            latency_median_ms=1300,
            capacity_rps=Dec("28"),
            utc_offset_hours=-6,
        ),
        D(
            "gcp-euw4-llama8b-gke-l4-spot",
            GCP,
            "gcp-prod",
            "europe-west4",
            "llama-3-1-8b-instruct",
            POOL,
            "gke",
            f"//compute.googleapis.com/projects/{GCP_ML_PROJECT}/zones/europe-west4-a/instances/"
            + gce_id("gcp-euw4-llama8b-gke-l4-spot"),
            (("support-bot", 0.5), ("fraud", 0.3), ("search", 0.2)),
            GATEWAY_ENVOY,
            "spot",
            "g2-standard-24",
            "nvidia-l4",
            1,
            2,
            Dec("2.0812"),
            pool="gke-euw4-l4-spot",
            resource_name="gke-ml-serving-euw4-l4-spot-" + stable_hex(seed, "l4eu", length=8) + "-q3m9",
            peak_requests_per_hour=16000,
            input_tokens_per_request=600,
            output_tokens_per_request=140,
            latency_median_ms=520,
            capacity_rps=Dec("7"),
            residency="eu",
            utc_offset_hours=1,
        ),
        D(
            "gcp-usc1-bge-gke-l4",
            GCP,
            "gcp-prod",
            "us-central1",
            "bge-large-en-v1-5",
            POOL,
            "gke",
            f"//compute.googleapis.com/projects/{GCP_ML_PROJECT}/zones/us-central1-b/instances/"
            + gce_id("gcp-usc1-bge-gke-l4"),
            (("recsys", 0.6), ("search", 0.4)),
            GATEWAY_ENVOY,
            "on_demand",
            "g2-standard-8",
            "nvidia-l4",
            1,
            1,
            Dec("0.8536"),
            pool="gke-usc1-l4",
            resource_name="gke-ml-serving-usc1-l4-" + stable_hex(seed, "l4us", length=8) + "-h2v8",
            peak_requests_per_hour=100000,
            input_tokens_per_request=240,
            output_tokens_per_request=0,
            latency_median_ms=35,
            latency_sigma=0.4,
            capacity_rps=Dec("50"),
            utc_offset_hours=-6,
        ),
        # --- Azure: Azure OpenAI accounts (per token) ----------------------------------------------
        D(
            "az-eus-gpt4o-aoai",
            AZURE,
            "azure-prod",
            "eastus",
            "gpt-4o",
            MANAGED_PER_TOKEN,
            "aoai",
            _azure_id("rg-ai-prod-eastus", "Microsoft.CognitiveServices/accounts/acme-aoai-assistant-eus"),
            (("assistant", 1.0),),
            GATEWAY_LITELLM,
            "managed_per_token",
            input_price_per_1k=Dec("0.0025"),
            output_price_per_1k=Dec("0.01"),
            resource_name="acme-aoai-assistant-eus",
            peak_requests_per_hour=9000,
            input_tokens_per_request=1800,
            output_tokens_per_request=380,
            latency_median_ms=1800,
        ),
        D(
            "az-weu-gpt4o-aoai",
            AZURE,
            "azure-prod",
            "westeurope",
            "gpt-4o",
            MANAGED_PER_TOKEN,
            "aoai",
            _azure_id("rg-ai-prod-westeurope", "Microsoft.CognitiveServices/accounts/acme-aoai-support-weu"),
            (("support-bot", 1.0),),
            GATEWAY_LITELLM,
            "managed_per_token",
            input_price_per_1k=Dec("0.0025"),
            output_price_per_1k=Dec("0.01"),
            resource_name="acme-aoai-support-weu",
            peak_requests_per_hour=5000,
            input_tokens_per_request=1500,
            output_tokens_per_request=300,
            latency_median_ms=1700,
            residency="eu",
            utc_offset_hours=1,
        ),
        D(
            "az-eus-gpt4o-mini-aoai",
            AZURE,
            "azure-prod",
            "eastus",
            "gpt-4o-mini",
            MANAGED_PER_TOKEN,
            "aoai",
            _azure_id("rg-ai-prod-eastus", "Microsoft.CognitiveServices/accounts/acme-aoai-fraud-eus"),
            (("fraud", 1.0),),
            GATEWAY_LITELLM,
            "managed_per_token",
            input_price_per_1k=Dec("0.00015"),
            output_price_per_1k=Dec("0.0006"),
            resource_name="acme-aoai-fraud-eus",
            peak_requests_per_hour=70000,
            input_tokens_per_request=900,
            output_tokens_per_request=60,
            latency_median_ms=500,
        ),
        D(
            "az-eus-embed3-aoai",
            AZURE,
            "azure-prod",
            "eastus",
            "text-embedding-3-large",
            MANAGED_PER_TOKEN,
            "aoai",
            _azure_id("rg-ai-prod-eastus", "Microsoft.CognitiveServices/accounts/acme-aoai-recsys-eus"),
            (("recsys", 1.0),),
            GATEWAY_LITELLM,
            "managed_per_token",
            input_price_per_1k=Dec("0.00013"),
            output_price_per_1k=Dec("0"),
            resource_name="acme-aoai-recsys-eus",
            peak_requests_per_hour=150000,
            input_tokens_per_request=300,
            output_tokens_per_request=0,
            latency_median_ms=90,
            latency_sigma=0.4,
        ),
        # --- Azure: AKS GPU node pools (shared) and Azure ML online endpoints ---------------------
        D(
            "az-eus-llama70b-aks-ndh100",
            AZURE,
            "azure-prod",
            "eastus",
            "llama-3-1-70b-instruct",
            POOL,
            "aks",
            _azure_id(
                "MC_rg-ml-serving_aks-ml-eus_eastus",
                "Microsoft.Compute/virtualMachineScaleSets/aks-ndh100-31415926-vmss",
            ),
            (("assistant", 0.4), ("research", 0.35), ("ads-ranking", 0.25)),
            GATEWAY_ENVOY,
            "reserved",
            "Standard_ND96isr_H100_v5",
            "nvidia-h100-80gb",
            1,
            8,
            Dec("98.32"),
            pool="aks-eus-ndh100",
            resource_name="aks-ndh100-31415926-vmss",
            peak_requests_per_hour=78000,
            input_tokens_per_request=1500,
            output_tokens_per_request=320,
            latency_median_ms=1350,
            capacity_rps=Dec("28"),
            maintenance_hours=(2, 3, 4, 5, 6, 7),
        ),
        D(
            "az-weu-llama8b-aks-nca100-spot",
            AZURE,
            "azure-prod",
            "westeurope",
            "llama-3-1-8b-instruct",
            POOL,
            "aks",
            _azure_id(
                "MC_rg-ml-serving_aks-ml-weu_westeurope",
                "Microsoft.Compute/virtualMachineScaleSets/aks-nca100spot-27182818-vmss",
            ),
            (("support-bot", 0.5), ("search", 0.5)),
            GATEWAY_ENVOY,
            "spot",
            "Standard_NC24ads_A100_v4",
            "nvidia-a100-80gb",
            2,
            1,
            Dec("4.0403"),
            pool="aks-weu-nca100-spot",
            resource_name="aks-nca100spot-27182818-vmss",
            peak_requests_per_hour=26000,
            input_tokens_per_request=650,
            output_tokens_per_request=150,
            latency_median_ms=360,
            capacity_rps=Dec("12"),
            residency="eu",
            utc_offset_hours=1,
        ),
        D(
            "az-weu-mistral-large-aml",
            AZURE,
            "azure-prod",
            "westeurope",
            "mistral-large",
            MANAGED_ENDPOINT,
            "aml",
            _azure_id(
                "rg-ml-prod-westeurope",
                "Microsoft.MachineLearningServices/workspaces/mlw-prod-weu/onlineEndpoints/mistral-large-search",
            ),
            (("search", 1.0),),
            GATEWAY_ENVOY,
            "on_demand",
            "Standard_NC24ads_A100_v4",
            "nvidia-a100-80gb",
            2,
            1,
            Dec("4.0403"),
            resource_name="mistral-large-search",
            peak_requests_per_hour=6000,
            input_tokens_per_request=1700,
            output_tokens_per_request=350,
            latency_median_ms=2500,
            capacity_rps=Dec("3"),
            residency="eu",
            utc_offset_hours=1,
            endpoint_url="https://mistral-large-search.westeurope.inference.ml.azure.com/score",
        ),
        D(
            "az-eus-whisper-aml",
            AZURE,
            "azure-prod",
            "eastus",
            "whisper-large-v3",
            MANAGED_ENDPOINT,
            "aml",
            _azure_id(
                "rg-ml-prod-eastus",
                "Microsoft.MachineLearningServices/workspaces/mlw-prod-eus/onlineEndpoints/whisper-assistant",
            ),
            (("assistant", 1.0),),
            GATEWAY_ENVOY,
            "on_demand",
            "Standard_NC4as_T4_v3",
            "nvidia-tesla-t4",
            2,
            1,
            Dec("0.526"),
            resource_name="whisper-assistant",
            peak_requests_per_hour=1500,
            input_tokens_per_request=0,
            output_tokens_per_request=380,
            latency_median_ms=3400,
            capacity_rps=Dec("1"),
            endpoint_url="https://whisper-assistant.eastus.inference.ml.azure.com/score",
        ),
    )


def company_build(*, seed: int) -> Company:
    return Company(
        seed=seed,
        teams=TEAMS,
        models=MODELS,
        accounts=_accounts(),
        deployments=_deployments(seed),
        aws_member_accounts={AWS_ML_ACCOUNT: "acme-ml-prod", AWS_PLATFORM_ACCOUNT: "acme-platform"},
    )
