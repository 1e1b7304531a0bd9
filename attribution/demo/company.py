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

from decimal import Decimal

from attribution.demo.deployments import deployments_build, untagged_workloads_build
from attribution.demo.specs import (
    AWS,
    AWS_ML_ACCOUNT,
    AWS_PAYER,
    AWS_PLATFORM_ACCOUNT,
    AZURE,
    AZURE_BILLING_ACCOUNT,
    GCP,
    GCP_BILLING_ACCOUNT,
    AccountSpec,
    Company,
    DeploymentSpec,
    ModelSpec,
    TeamSpec,
)

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


def company_build(*, seed: int) -> Company:
    return Company(
        seed=seed,
        teams=TEAMS,
        models=MODELS,
        accounts=_accounts(),
        deployments=deployments_build(seed),
        aws_member_accounts={AWS_ML_ACCOUNT: "acme-ml-prod", AWS_PLATFORM_ACCOUNT: "acme-platform"},
        untagged_workloads=untagged_workloads_build(),
    )
