"""Celery tasks of attribution.connectors (thin: take ids, call services)."""
