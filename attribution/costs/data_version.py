"""The data version of what the Overview reads, for its cache (attribution/views/overview.py).

Every statement that changes a row of a table the Overview reads appends a row to
attribution_datachange, in the writer's transaction (statement-level triggers, migrations
attribution 0027 and governance 0010): ingest swaps, allocation, estimates, rollups, unit costs,
exchange rates, teams, models, deployments, alerts and anomalies, whatever code path writes them.
A statement that changes no row (an UPDATE or DELETE that matches nothing) leaves the version as
it was, so it does not invalidate every cached page (attribution 0030, governance 0011); a
TRUNCATE always counts.

The version is the sum of the rows' weights and the highest id. A committed write always adds to
the sum, and becomes visible in the same commit as the data it changed, so a version read before
computing a page never names data older than the page: the next request after any change reads a
new version and misses the cache. The highest id tells apart states with the same sum that a
rolled-back transaction could leave behind (ids are never handed out twice).

Reading is one query and never writes. The rows are folded into one when they pile up, by the
Overview's warm-up beat (every 30 s, attribution/views/overview.py overview_warm_recent), not by
readers: a fold keeps both the sum and the highest id (the folded row takes the highest id it
deleted), so the version, and every page cached under it, survives it. Concurrent folds each fold
only the rows they deleted, and re-use only an id they deleted.
"""

from __future__ import annotations

from django.db import connection

# Fold the change rows into one beyond this many (a read of them stays well under a millisecond).
FOLD_AFTER = 500

_READ = "SELECT coalesce(sum(weight), 0), coalesce(max(id), 0) FROM attribution_datachange"
# One statement: nothing happens at FOLD_AFTER rows or fewer. The aggregate reads every deleted row
# before the one insert, which takes the highest id deleted (free again: this statement deleted it).
_FOLD = """
WITH folded AS (
  DELETE FROM attribution_datachange
   WHERE (SELECT count(*) FROM attribution_datachange) > %s
  RETURNING id, weight
)
INSERT INTO attribution_datachange (id, weight) SELECT max(id), sum(weight) FROM folded HAVING count(*) > 0
"""


def data_version() -> str:
    """The current version, as text for a cache key (one query)."""
    with connection.cursor() as cursor:
        cursor.execute(_READ)
        total, last = cursor.fetchone()
    return f"{total}.{last}"


def data_version_fold() -> bool:
    """Fold the change rows into one when there are more than FOLD_AFTER; the version stays the same.
    Whether anything was folded."""
    with connection.cursor() as cursor:
        cursor.execute(_FOLD, [FOLD_AFTER])
        return cursor.rowcount > 0


def data_version_bump() -> None:
    """Mark the Overview's data changed without writing it (bench/pages.py's cold requests)."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO attribution_datachange DEFAULT VALUES")
