"""The one base class every API viewset derives from (NetBox style).

Scoping happens here, where rows are queried, so no endpoint can forget it:

- A queryset whose class has a `restrict(user)` method (teams, daily costs, usage, budgets,
  quotas...) is always passed through it. What a caller may see is decided in one place per model,
  the queryset, and the same method scopes the HTML pages.
- A queryset without `restrict` holds shared reference data that carries no team: cloud accounts,
  models, deployments, ingest runs, gateways and policy documents. Any authenticated caller may read
  it (the default permission class, IsAuthenticated, keeps anonymous callers out). Data that must be
  narrower than that, such as the audit log, needs a `restrict` method or a permission class on
  its viewset.

This module lives in attribution, the lowest layer, so governance and routing can import it
without breaking the layer rule.
"""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import permissions, viewsets
from rest_framework.request import Request
from rest_framework.views import APIView

# The scope an API token needs for the read-only endpoints. Session users are not scoped.
READ_SCOPE = "read"


class TokenHasReadScope(permissions.BasePermission):
    """A request authenticated by an API token needs the `read` scope to use GET endpoints."""

    message = "This API token lacks the 'read' scope."

    def has_permission(self, request: Request, view: APIView) -> bool:
        scopes = getattr(request.auth, "scopes", None)
        if scopes is None:  # session (or another scheme without scopes)
            return True
        return READ_SCOPE in scopes


class RestrictedReadOnlyViewSet(viewsets.ReadOnlyModelViewSet):
    """Read-only, paginated, filterable; every queryset restricted to what the caller may see."""

    permission_classes = [permissions.IsAuthenticated, TokenHasReadScope]
    # Numeric ids only, so a word such as `summary` can never be taken for an object id.
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet:
        return restrict_queryset(super().get_queryset(), self.request)


def restrict_queryset(queryset: QuerySet, request: Request) -> QuerySet:
    user = request.user
    if user is None or not user.is_authenticated:
        return queryset.none()
    restrict = getattr(queryset, "restrict", None)
    if restrict is None:
        return queryset  # shared reference data, see the module docstring
    return restrict(user)
