"""Celery tasks of attribution.costs (thin: call the view's warm-up).

After ingest, allocation or new estimates change what the Overview reads (its data version), the
unfiltered Overview is rendered again for the users who recently read it (attribution/views/overview.py,
overview_warm), so the first of them to come back gets a cached page instead of waiting for it.
"""

from __future__ import annotations

from celery import shared_task
from django.contrib.auth import get_user_model


@shared_task(
    name="attribution.costs.tasks.overview_warm_task", ignore_result=True, soft_time_limit=120, time_limit=130
)
def overview_warm_task() -> dict[str, int]:
    """Render the unfiltered Overview of every scope served in the last 24 hours (a user of each)."""
    from attribution.views.overview import overview_warm, recent_readers

    ids = recent_readers()
    users = get_user_model().objects.filter(pk__in=ids, is_active=True).in_bulk()
    return overview_warm(users=[users[pk] for pk in ids if pk in users])
