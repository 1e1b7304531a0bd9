"""One navigation for every page of every app, decided per user.

Role-aware by construction: an entry whose `visible` test fails for the user is not rendered at all,
so a page a user may not open is neither linked nor present in the HTML. The tests are the same
checks the pages themselves apply (governance.access), so the menu cannot drift from the views.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse

from governance import access


def _everyone(user) -> bool:
    return True


def _admin_or_finance(user) -> bool:
    return access.user_edits_any_scope(user=user)


def _may(permission: str) -> Callable:
    def check(user) -> bool:
        return user.has_perm(permission)

    return check


def _superuser(user) -> bool:
    # The Django admin bypasses the roles' scoping; it stays a tool for operators (superusers).
    return bool(user.is_superuser)


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    visible: Callable = _everyone
    # Sub-pages (a budget's detail, a model's routing page) keep their section highlighted.
    match_prefix: bool = True


@dataclass(frozen=True)
class NavSection:
    label: str
    entries: tuple[NavEntry, ...]


SECTIONS: tuple[NavSection, ...] = (
    NavSection(
        "Costs",
        (
            NavEntry("Overview", "attribution:overview", match_prefix=False),
            NavEntry("Cost explorer", "attribution:explorer"),
            NavEntry("Unit economics", "routing:unit_economics"),
            NavEntry("Unallocated", "unallocated:index"),
        ),
    ),
    NavSection(
        "Governance",
        (
            NavEntry("Budgets", "governance:budgets"),
            NavEntry("Alerts", "governance:alerts"),
            NavEntry("Quotas", "governance:quotas"),
            NavEntry("Audit log", "governance:audit", visible=_admin_or_finance),
        ),
    ),
    NavSection(
        "Routing",
        (
            NavEntry("Models", "routing:index", match_prefix=False),
            NavEntry("Gateways", "routing:gateways"),
            NavEntry("Deployments", "routing:deployments"),
        ),
    ),
    NavSection(
        "Settings",
        (
            NavEntry("Cloud accounts", "connectors:accounts"),
            NavEntry("Ingestion", "attribution:ingestion", visible=_may("attribution.view_ingestrun")),
            NavEntry("Mapping rules", "rules:index"),
            NavEntry(
                "Allocation rules",
                "settings_allocation:index",
                visible=_may("attribution.view_allocationrule"),
            ),
            NavEntry("Exchange rates", "settings_rates:index", visible=_may("attribution.view_exchangerate")),
            NavEntry("Teams", "settings_teams:index", visible=_may("attribution.view_team")),
            NavEntry(
                "Models and deployments",
                "settings_routing:models",
                visible=_may("attribution.view_deployment"),
            ),
            NavEntry("Members and roles", "settings_governance:members", visible=_may("auth.view_user")),
            NavEntry("API tokens", "settings_governance:api-tokens"),
            NavEntry(
                "Notification channels",
                "settings_governance:channels",
                visible=_may("governance.view_notificationchannel"),
            ),
        ),
    ),
    NavSection(
        "Tools",
        (
            NavEntry("API docs", "swagger-ui"),
            NavEntry("Django admin", "admin:index", visible=_superuser),
        ),
    ),
)


def navigation_for(*, user, path: str) -> list[dict]:
    """The sections and links `user` may see, the one for `path` marked current."""
    sections = []
    for section in SECTIONS:
        links = []
        for entry in section.entries:
            if not entry.visible(user):
                continue
            url = reverse(entry.url_name)
            current = path == url or (entry.match_prefix and url != "/" and path.startswith(url))
            links.append({"label": entry.label, "url": url, "current": current})
        if links:
            sections.append({"label": section.label, "links": links})
    return sections


def navigation(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav_sections": navigation_for(user=user, path=request.path)}
