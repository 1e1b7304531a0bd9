"""The overview's data version: every statement that writes a table the Overview reads appends a
row to attribution_datachange (a statement-level trigger), in the writer's own transaction.

attribution/costs/data_version.py reads the version (the sum of the weights, and the highest id)
and keys the Overview's cache on it: a change becomes visible to readers in the same commit as the
data it changed, so a version read before computing never names data older than itself. Appending
(not updating one counter row) never makes concurrent writers wait for each other; readers fold
the rows into one now and then, keeping the sum."""

from django.db import migrations

# The attribution tables the Overview reads (price cards: 0028; tests/…/test_overview_cache.py checks
# that every table its queries read is here, in governance's migration, or part of the cache key).
TABLES = (
    "attribution_dailycost",
    "attribution_allocatedcost",
    "attribution_spendestimate",
    "attribution_unitcost",
    "attribution_usagedaily",
    "attribution_exchangerate",
    "attribution_estimatecalibration",
    "attribution_team",
    "attribution_model",
    "attribution_deployment",
)

FUNCTION = """
CREATE TABLE attribution_datachange (id bigserial PRIMARY KEY, weight bigint NOT NULL DEFAULT 1);
CREATE FUNCTION attribution_data_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO attribution_datachange DEFAULT VALUES;
    RETURN NULL;
END $$;
"""

TRIGGER = """
CREATE TRIGGER {table}_data_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION attribution_data_changed();
"""


def create_triggers(tables):
    return "".join(TRIGGER.format(table=table) for table in tables)


def drop_triggers(tables):
    return "".join(f"DROP TRIGGER IF EXISTS {table}_data_changed ON {table};" for table in tables)


class Migration(migrations.Migration):
    dependencies = [
        ("attribution", "0026_daily_resource_cost_unenforced_account"),
    ]

    operations = [
        migrations.RunSQL(
            FUNCTION + create_triggers(TABLES),
            reverse_sql=drop_triggers(TABLES)
            + "DROP FUNCTION attribution_data_changed(); DROP TABLE attribution_datachange;",
        ),
    ]
