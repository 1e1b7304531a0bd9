"""Reads of the cost dimensions for the Settings pages, restricted to what the user may see."""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.db.models import Count, Q

from attribution.models import Team

TEAMS_PER_PAGE = 50


def teams_page(*, user, query: str = "", page_number: int | str = 1) -> Page:
    """The teams `user` may see (all for admin and finance, their own for everyone else), with how
    many members and leads each has, in one query per page (plus the count).

    Memberships belong to governance; the count follows the reverse relation by name, as
    ScopedQuerySet does, so this layer imports nothing from it."""
    teams = Team.objects.restrict(user).annotate(
        members_count=Count("memberships", distinct=True),
        leads_count=Count("memberships", filter=Q(memberships__role="lead"), distinct=True),
    )
    if query:
        teams = teams.filter(
            Q(name__icontains=query) | Q(slug__icontains=query) | Q(cost_center__icontains=query)
        )
    return Paginator(teams.order_by("name", "id"), TEAMS_PER_PAGE).get_page(page_number)
