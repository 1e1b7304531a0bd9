"""Infrastructure tasks that belong to no layer."""

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone


@shared_task(name="config.tasks.heartbeat", ignore_result=True)
def heartbeat() -> str:
    """Record that a worker is consuming; /readyz can show when the last beat ran."""
    now = timezone.now().isoformat()
    cache.set("inferensys:last-heartbeat", now, timeout=3600)
    return now


@shared_task(name="config.tasks.ping")
def ping(value: str) -> str:
    """Echo task used by readiness checks and the end-to-end worker test."""
    return f"pong:{value}"
