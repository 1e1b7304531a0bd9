"""Who may call what, as DRF permission and throttle classes shared by every endpoint.

Settings name these classes (DEFAULT_PERMISSION_CLASSES, DEFAULT_THROTTLE_CLASSES) and DRF loads
them while its own views module is still being imported, so this module imports no DRF views,
viewsets or generics.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import permissions, throttling
from rest_framework.request import Request

# API token scopes. Session users are not scoped: their roles decide.
READ_SCOPE = "read"
WRITE_SCOPE = "write"


def token_scope_denial(*, scopes: list[str] | None, method: str, view: Any) -> str | None:
    """Why a token with `scopes` may not call `method` on `view`, or None if it may.

    Safe methods need `read`. Every other method needs `write`, or the narrower scope the view
    names in `token_write_scope` (e.g. `write:exchange_rates`). A view that names none accepts only
    `write`: an endpoint added without thinking about scopes is closed to narrow tokens, not open.
    """
    if scopes is None:  # a session, or a scheme without scopes (gateway tokens)
        return None
    if method in permissions.SAFE_METHODS:
        return None if READ_SCOPE in scopes else f"This API token lacks the '{READ_SCOPE}' scope."
    narrow = getattr(view, "token_write_scope", None)
    if narrow is None and getattr(view, "write_scope", None):  # the budgets API's spelling
        narrow = f"write:{view.write_scope}"
    accepted = [WRITE_SCOPE, *([narrow] if narrow else [])]
    if any(scope in scopes for scope in accepted):
        return None
    return f"This API token lacks the {' or '.join(repr(scope) for scope in accepted)} scope for {method}."


class TokenScopePermission(permissions.BasePermission):
    """The one scope check for API tokens, on every method of every endpoint.

    It is the first of DEFAULT_PERMISSION_CLASSES and of the base viewset. A view that replaces
    permission_classes without it is still covered: ApiTokenAuthentication applies the same rule
    (token_scope_denial) when it authenticates a token, so no endpoint can drop the check.
    """

    message = "This API token lacks the scope this request needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        denial = token_scope_denial(
            scopes=getattr(request.auth, "scopes", None), method=request.method, view=view
        )
        if denial is not None:
            self.message = denial
        return denial is None


class TokenRateThrottle(throttling.SimpleRateThrottle):
    """Requests per minute per API token and per gateway token; sessions are not throttled here
    (logins are, by django-axes). Over the rate: 429 with Retry-After (DRF).

    The token row is the key, so a token's budget is the same whichever web process answers (the
    count lives in the shared cache)."""

    scope = "token"

    def get_rate(self) -> str | None:
        return None  # decided per request in allow_request

    def allow_request(self, request: Request, view: Any) -> bool:
        token = request.auth
        if token is None or getattr(token, "pk", None) is None:
            return True
        per_minute = (
            settings.GATEWAY_TOKEN_RATE_PER_MINUTE
            if token.__class__.__name__ == "Gateway"
            else settings.API_TOKEN_RATE_PER_MINUTE
        )
        self.rate = f"{per_minute}/min"
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str:
        token = request.auth
        return f"throttle:{token._meta.label_lower}:{token.pk}"
