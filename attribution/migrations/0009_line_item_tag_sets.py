"""Line item tags stored once per distinct combination (TagSet), referenced by `tag_set_id`.

The two jsonb columns were a third of every line item and of every COPY (and jsonb parsing on the
way in). Existing rows get tag sets keyed by a digest computed here in SQL; new ones are keyed by
the loader's BLAKE2b digest (attribution/ingest/loader.py: `tag_set_id`). Both are content keys,
so an old and a new set with the same tags may coexist under two ids; nothing depends on one id
per content. The staging table (Azure pairing) carries `tag_set_id` too. focus_line_items keeps
its "Tags" column, now read through the tag set.
"""

import importlib

import django.db.models.deletion
from django.db import migrations, models

view = importlib.import_module("attribution.migrations.0006_focus_line_items_current_runs")
CREATE_VIEW = (
    view.CURRENT_ONLY.replace("CREATE OR REPLACE VIEW", "CREATE VIEW")
    .replace('li.tags                         AS "Tags"', 'ts.tags                         AS "Tags"')
    .replace(
        "JOIN attribution_cloudaccount acct ON acct.id = li.account_id",
        "JOIN attribution_cloudaccount acct ON acct.id = li.account_id\n"
        "JOIN attribution_tagset ts ON ts.id = li.tag_set_id",
    )
)
assert 'ts.tags' in CREATE_VIEW and "JOIN attribution_tagset" in CREATE_VIEW
PREVIOUS_VIEW = view.CURRENT_ONLY.replace("CREATE OR REPLACE VIEW", "CREATE VIEW")

_DIGEST = "(('x' || left(md5(tags::text || chr(31) || normalized_tags::text), 16))::bit(64)::bigint & 9223372036854775807)"

FORWARD = f"""
DROP VIEW IF EXISTS focus_line_items;
INSERT INTO attribution_tagset (id, tags, normalized_tags)
SELECT DISTINCT ON ({_DIGEST}) {_DIGEST}, tags, normalized_tags FROM attribution_costlineitem
ON CONFLICT (id) DO NOTHING;
ALTER TABLE attribution_costlineitem ADD COLUMN tag_set_id bigint;
UPDATE attribution_costlineitem SET tag_set_id = {_DIGEST};
ALTER TABLE attribution_costlineitem ALTER COLUMN tag_set_id SET NOT NULL;
ALTER TABLE attribution_costlineitem DROP COLUMN tags, DROP COLUMN normalized_tags;
TRUNCATE attribution_costlineitem_staging;  -- in-flight pairings only; their runs are rerun
ALTER TABLE attribution_costlineitem_staging DROP COLUMN tags, DROP COLUMN normalized_tags,
    ADD COLUMN tag_set_id bigint NOT NULL;
{CREATE_VIEW};
"""

BACKWARD = f"""
DROP VIEW IF EXISTS focus_line_items;
ALTER TABLE attribution_costlineitem ADD COLUMN tags jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    ADD COLUMN normalized_tags jsonb NOT NULL DEFAULT '{{}}'::jsonb;
UPDATE attribution_costlineitem li SET tags = ts.tags, normalized_tags = ts.normalized_tags
  FROM attribution_tagset ts WHERE ts.id = li.tag_set_id;
ALTER TABLE attribution_costlineitem DROP COLUMN tag_set_id;
ALTER TABLE attribution_costlineitem_staging DROP COLUMN tag_set_id,
    ADD COLUMN tags jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    ADD COLUMN normalized_tags jsonb NOT NULL DEFAULT '{{}}'::jsonb;
{PREVIOUS_VIEW};
"""


class Migration(migrations.Migration):
    dependencies = [("attribution", "0008_line_items_partitioned_by_run")]

    operations = [
        migrations.CreateModel(
            name="TagSet",
            fields=[
                ("id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("tags", models.JSONField(blank=True, default=dict)),
                ("normalized_tags", models.JSONField(blank=True, default=dict)),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, reverse_sql=BACKWARD)],
            state_operations=[
                migrations.RemoveField(model_name="costlineitem", name="tags"),
                migrations.RemoveField(model_name="costlineitem", name="normalized_tags"),
                migrations.AddField(
                    model_name="costlineitem",
                    name="tag_set",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="attribution.tagset",
                    ),
                    preserve_default=False,
                ),
            ],
        ),
    ]
