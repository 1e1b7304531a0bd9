"""Celery tasks of attribution.costs (thin: call the view's warm-up).

After any write to what the Overview reads (its data version moved), the pages its recent readers
had computed, unfiltered and filtered, are rendered again for them (attribution/views/overview.py,
overview_warm_recent), so the first of them to come back gets a cached page instead of waiting for
it. The beat runs this every 30 seconds (config/celery_app.py), which catches every writer (a
rename, an alert, an edit in settings); the tasks that write in bulk also enqueue it as they finish
(attribution/costs/receivers.py), so their pages are warm at once.
"""

from __future__ import annotations

from celery import shared_task


@shared_task(
    name="attribution.costs.tasks.overview_warm_task", ignore_result=True, soft_time_limit=120, time_limit=130
)
def overview_warm_task() -> dict[str, int]:
    """Render the recent readers' Overview pages for the current data version, if it moved."""
    from attribution.views.overview import overview_warm_recent

    return overview_warm_recent()
