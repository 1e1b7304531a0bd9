"""focus_line_items shows only current versions: rows whose ingest run is `succeeded`.

Ingestion now COPYs line items straight into attribution_costlineitem under the new run's id
(attribution/ingest/loader.py); rows of a run that is loading, failed or superseded stay in the
table until they are deleted but are never visible. Same columns, same meaning; only which rows.
"""

import importlib

from django.db import migrations

previous = importlib.import_module("attribution.migrations.0002_focus_line_items_view")

CURRENT_ONLY = previous.CREATE_VIEW.replace(
    "CREATE VIEW focus_line_items AS", "CREATE OR REPLACE VIEW focus_line_items AS"
).rstrip() + ("\nJOIN attribution_ingestrun run ON run.id = li.ingest_run_id AND run.state = 'succeeded'\n")
PREVIOUS = previous.CREATE_VIEW.replace(
    "CREATE VIEW focus_line_items AS", "CREATE OR REPLACE VIEW focus_line_items AS"
)


class Migration(migrations.Migration):
    dependencies = [("attribution", "0005_focus_allocated_costs_view")]

    operations = [migrations.RunSQL(CURRENT_ONLY, reverse_sql=PREVIOUS)]
