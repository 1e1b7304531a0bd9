"""Open alerts (anomalies among them) are on the Overview: writing them changes its data version
(see attribution's 0027_overview_data_version)."""

from django.db import migrations

TABLES = ("governance_alert",)
DROP = "DROP TRIGGER IF EXISTS {table}_data_changed ON {table};"
TRIGGER = """
CREATE TRIGGER {table}_data_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION attribution_data_changed();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("attribution", "0027_overview_data_version"),
        ("governance", "0009_alert_kinds_routing"),
    ]

    operations = [
        migrations.RunSQL(
            "".join(TRIGGER.format(table=table) for table in TABLES),
            reverse_sql="".join(
                f"DROP TRIGGER IF EXISTS {table}_data_changed ON {table};" for table in TABLES
            ),
        ),
    ]
