"""Celery tasks of attribution.usage (thin: take ids, call services)."""
