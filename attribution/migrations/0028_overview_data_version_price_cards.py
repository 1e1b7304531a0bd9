"""Price cards are read by the Overview too (routing savings cost a deployment without unit costs
by its price card): writing them changes the data version (see 0027_overview_data_version)."""

from django.db import migrations

TABLES = ("attribution_pricecard",)
DROP = "DROP TRIGGER IF EXISTS {table}_data_changed ON {table};"
TRIGGER = """
CREATE TRIGGER {table}_data_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION attribution_data_changed();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("attribution", "0027_overview_data_version"),
    ]

    operations = [
        migrations.RunSQL(
            "".join(TRIGGER.format(table=table) for table in TABLES),
            reverse_sql="".join(DROP.format(table=table) for table in TABLES),
        ),
    ]
