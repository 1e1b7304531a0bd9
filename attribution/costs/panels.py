"""Panels that higher layers add to the Overview page, without attribution importing them.

Attribution owns the Overview, but open alerts live in governance and routing savings in routing,
both layers above it (imports go one way only). Each registers a builder here from its
AppConfig.ready(); the overview view asks every builder for its panel. A builder takes the user and
the month the overview shows, reads through its own layer's role-scoped selectors, and returns the
template to include with its context, or None when it has nothing to show this user.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class OverviewPanel:
    key: str
    template: str
    context: dict = field(default_factory=dict)


PanelBuilder = Callable[..., OverviewPanel | None]
_BUILDERS: dict[str, PanelBuilder] = {}


def overview_panel_register(*, key: str, builder: PanelBuilder) -> None:
    """Register (or replace, on a second ready()) the builder of one panel; shown in this order."""
    _BUILDERS[key] = builder


def overview_panels(*, user, month_start: dt.date, today: dt.date) -> list[OverviewPanel]:
    panels = []
    for builder in _BUILDERS.values():
        panel = builder(user=user, month_start=month_start, today=today)
        if panel is not None:
            panels.append(panel)
    return panels
