from __future__ import annotations

from django.http import HttpRequest

from governance.access import user_edits_any_scope


def navigation(request: HttpRequest) -> dict:
    """What the navigation may link to: the audit log only for those who may read it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"governance_reads_audit": user_edits_any_scope(user=user)}
