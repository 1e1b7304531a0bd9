"""Celery tasks of attribution.allocation (thin: take ids, call services)."""
