"""UNLOGGED staging table for the ingest pipeline (see attribution/ingest/loader.py).

Parsers COPY rows here keyed by ingest_run_id; the swap then moves them into
attribution_costlineitem in one transaction. UNLOGGED because the rows are disposable: a crash
loses them and the run is simply redone. Text columns have no length limits here so one long value
cannot fail a whole COPY; the swap trims values to the line item columns' limits.
"""

from django.db import migrations

CREATE_STAGING = """
CREATE UNLOGGED TABLE attribution_costlineitem_staging (
    ingest_run_id           bigint NOT NULL,
    account_id              bigint NOT NULL,
    source_line             bigint NOT NULL,
    source_file             integer NOT NULL DEFAULT 0,
    dataset                 text NOT NULL DEFAULT '',
    pair_key                text NOT NULL DEFAULT '',
    billing_period_start    date NOT NULL,
    billed_cost             numeric(24,10) NOT NULL,
    effective_cost          numeric(24,10) NOT NULL,
    list_cost               numeric(24,10),
    contracted_cost         numeric(24,10),
    billing_currency        text NOT NULL,
    charge_period_start     timestamptz NOT NULL,
    charge_period_end       timestamptz NOT NULL,
    billing_period_start_at timestamptz NOT NULL,
    billing_period_end_at   timestamptz NOT NULL,
    charge_category         text NOT NULL,
    charge_class            text NOT NULL DEFAULT '',
    charge_description      text NOT NULL DEFAULT '',
    charge_frequency        text NOT NULL DEFAULT '',
    provider_name           text NOT NULL,
    publisher_name          text NOT NULL DEFAULT '',
    invoice_issuer_name     text NOT NULL DEFAULT '',
    billing_account_id      text NOT NULL DEFAULT '',
    billing_account_name    text NOT NULL DEFAULT '',
    sub_account_id          text NOT NULL DEFAULT '',
    sub_account_name        text NOT NULL DEFAULT '',
    region_id               text NOT NULL DEFAULT '',
    region_name             text NOT NULL DEFAULT '',
    availability_zone       text NOT NULL DEFAULT '',
    resource_id             text NOT NULL DEFAULT '',
    resource_name           text NOT NULL DEFAULT '',
    resource_type           text NOT NULL DEFAULT '',
    service_name            text NOT NULL DEFAULT '',
    service_category        text NOT NULL DEFAULT '',
    sku_id                  text NOT NULL DEFAULT '',
    sku_price_id            text NOT NULL DEFAULT '',
    pricing_category        text NOT NULL DEFAULT '',
    pricing_quantity        numeric(28,10),
    pricing_unit            text NOT NULL DEFAULT '',
    consumed_quantity       numeric(28,10),
    consumed_unit           text NOT NULL DEFAULT '',
    commitment_discount_id  text NOT NULL DEFAULT '',
    tags                    jsonb NOT NULL DEFAULT '{}'::jsonb,
    normalized_tags         jsonb NOT NULL DEFAULT '{}'::jsonb,
    team_id                 bigint,
    model_id                bigint,
    deployment_id           bigint
);
CREATE INDEX attribution_costlineitem_staging_run ON attribution_costlineitem_staging (ingest_run_id);
"""


class Migration(migrations.Migration):
    dependencies = [("attribution", "0002_focus_line_items_view")]

    operations = [
        migrations.RunSQL(
            CREATE_STAGING, reverse_sql="DROP TABLE IF EXISTS attribution_costlineitem_staging"
        ),
    ]
