"""Policy documents are immutable in the database too: a gateway may hold a version for days, and
what it holds must stay what we published. `save()` refuses updates; this trigger also stops
`QuerySet.update()` and raw SQL."""

from django.db import migrations

CREATE = """
CREATE FUNCTION routing_policydocument_refuse_update() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'policy document % v% is immutable; publish a new version', OLD.gateway_id, OLD.version
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER routing_policydocument_immutable
BEFORE UPDATE ON routing_policydocument
FOR EACH ROW EXECUTE FUNCTION routing_policydocument_refuse_update();
"""

DROP = """
DROP TRIGGER IF EXISTS routing_policydocument_immutable ON routing_policydocument;
DROP FUNCTION IF EXISTS routing_policydocument_refuse_update();
"""


class Migration(migrations.Migration):
    dependencies = [("routing", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
