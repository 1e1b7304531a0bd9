"""What crash recovery needs to know about a run: who executes it, how many attempts started, and
when the sweeper last enqueued it again (attribution/ingest/sweep.py)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("attribution", "0013_unit_cost_ratio_basis")]

    operations = [
        migrations.AddField(
            model_name="ingestrun",
            name="executor",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="ingestrun",
            name="attempts",
            field=models.PositiveIntegerField(default=0, help_text="Executions started (claims)"),
        ),
        migrations.AddField(
            model_name="ingestrun",
            name="dispatched_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
