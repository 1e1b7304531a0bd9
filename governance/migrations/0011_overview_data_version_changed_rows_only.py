"""Alerts bump the Overview's data version only when a statement changes a row (see attribution's
0030_overview_data_version_changed_rows_only, which defines attribution_rows_changed())."""

from django.db import migrations

TABLES = ("governance_alert",)
TRIGGERS = """
DROP TRIGGER {table}_data_changed ON {table};
CREATE TRIGGER {table}_data_inserted AFTER INSERT ON {table} REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attribution_rows_changed();
CREATE TRIGGER {table}_data_updated AFTER UPDATE ON {table} REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attribution_rows_changed();
CREATE TRIGGER {table}_data_deleted AFTER DELETE ON {table} REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attribution_rows_changed();
CREATE TRIGGER {table}_data_truncated AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION attribution_data_changed();
"""
REVERSE = """
DROP TRIGGER {table}_data_inserted ON {table};
DROP TRIGGER {table}_data_updated ON {table};
DROP TRIGGER {table}_data_deleted ON {table};
DROP TRIGGER {table}_data_truncated ON {table};
CREATE TRIGGER {table}_data_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION attribution_data_changed();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("attribution", "0030_overview_data_version_changed_rows_only"),
        ("governance", "0010_overview_data_version"),
    ]

    operations = [
        migrations.RunSQL(
            "".join(TRIGGERS.format(table=table) for table in TABLES),
            reverse_sql="".join(REVERSE.format(table=table) for table in TABLES),
        ),
    ]
