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

from attribution.api.access import (  # noqa: F401 (re-exported)
    READ_SCOPE,
    WRITE_SCOPE,
    TokenRateThrottle,
    TokenScopePermission,
    token_scope_denial,
)

# The access checks live in attribution.api.access (settings import it while DRF's views load,
# so it must not import them); re-exported here for the viewsets that import them from here.
TokenHasReadScope = TokenScopePermission


class RestrictedReadOnlyViewSet(viewsets.ReadOnlyModelViewSet):
    """Read-only, paginated, filterable; every queryset restricted to what the caller may see."""

    permission_classes = [permissions.IsAuthenticated, TokenScopePermission]
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
