"""HTML pages of the attribution layer. Views parse input and render; selectors do the reading."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time
from urllib.parse import quote, quote_plus, urlencode

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.html import format_html_join
from django.utils.http import RFC3986_SUBDELIMS
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET
from redis.exceptions import RedisError

from attribution import design
from attribution.choices import Provider
from attribution.costs import explorer, movers
from attribution.costs import overview as selectors
from attribution.costs.data_version import data_version, data_version_fold
from attribution.costs.panels import overview_panels
from attribution.models import Team
from attribution.models.core import user_reads_everything
from attribution.templatetags.ui import floatfmt_in_current_language
from attribution.views import overview_rows
from attribution.widgets import PlainSelect


class OverviewFilterForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    # Django's Select without two template includes per option (the same elements; no blank lines).
    provider = forms.ChoiceField(required=False, widget=PlainSelect)
    team = forms.ChoiceField(required=False, widget=PlainSelect)
    model = forms.ChoiceField(required=False, widget=PlainSelect)

    def __init__(self, *args, choices: dict[str, list[tuple[str, str]]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [("", "All providers"), *choices["providers"]]
        self.fields["team"].choices = [("", "All teams"), *choices["teams"]]
        self.fields["model"].choices = [("", "All models"), *choices["models"]]

    def clean(self) -> dict:
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if start > end:
                raise forms.ValidationError("The start date must be on or before the end date.")
            if (end - start).days + 1 > selectors.MAX_RANGE_DAYS:
                raise forms.ValidationError(
                    f"Choose a range of at most {selectors.MAX_RANGE_DAYS} days; narrow the dates."
                )
        elif start and not end:
            raise forms.ValidationError("Give an end date too, or leave both dates empty for the default.")
        return cleaned

    def to_filters(self) -> selectors.OverviewFilters:
        """Valid fields as filters; an invalid one falls back to its default (its error is shown)."""
        if not self.is_bound:
            return selectors.OverviewFilters()
        self.is_valid()
        data = {key: value for key, value in self.cleaned_data.items() if key not in self.errors}
        if self.non_field_errors():
            # The range as a whole was wrong: use the default range rather than half of it.
            data.pop("start", None)
            data.pop("end", None)
        model = data.get("model")
        return selectors.OverviewFilters(
            start=data.get("start"),
            end=data.get("end"),
            provider=data.get("provider") or "",
            team=data.get("team") or "",
            model_id=int(model) if model else None,
        )


@login_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    """The page's content comes from the cache when nothing it reads has changed (see
    overview_cache_key); otherwise it is computed, rendered and cached. Only the content is cached:
    the chrome around it (navigation, account, messages) is rendered for each request."""
    key = overview_cache_key(request)
    content = _cache_call(cache.get, key)
    context: dict = {}
    if content is None:
        context, content = _overview_render(request, key)
        page = _reader_page(request, context["form"])
        if page is not None:
            _cache_call(_remember_reader, request.user.pk, page)
    # On a miss the computed context goes along too (tests read it from the response).
    return render(request, "attribution/overview.html", {**context, "content": mark_safe(content)})  # noqa: S308


logger = logging.getLogger(__name__)


def _overview_render(request: HttpRequest, key: str) -> tuple[dict, str]:
    """The content computed, rendered and cached under `key`."""
    context = _overview_context(request)
    # Without the request: the content reads none of what the context processors add (the
    # navigation, the user, messages), and they cost the computed page 2-3 ms for nothing.
    content = render_to_string("attribution/overview_content.html", context)
    _cache_call(cache.set, key, content, settings.OVERVIEW_CACHE_SECONDS)
    return context, content


def _reader_page(request: HttpRequest, form: OverviewFilterForm) -> str | None:
    """The page as the warm-up asks for it again: "" unfiltered, else the filter fields given, as a
    query string in the form's order (the request's cache key, without what is not a filter, so
    "?provider=aws&utm_source=mail" is the same page as "?provider=aws"). None when a filter is
    invalid (an error page is not worth warming, and a crafted query must not take a reader's
    places) or when no filter field is given at all (a bound empty form: no query asks for it)."""
    if not request.GET:
        return ""
    given = _filters_given(request)
    if not given or not form.is_valid():
        return None
    return urlencode(given)


# Who recently had an Overview page computed for them and which pages (see _reader_page), so those
# can be rendered again for them after a write, before they ask (overview_warm). Written on a cache
# miss only. With Redis (production) a sorted set of users (id -> last time, epoch seconds) and one
# of pages per user, updated in one MULTI: two web processes remembering their first readers at once
# both land, where a read-modify-write of one entry kept only the last writer's. Without Redis
# (`make demo`'s file cache) only the web process writes them, so a lock is enough. (The sorted set
# has its own key: the entry the previous release wrote under "overview:readers" was a pickled dict,
# which ZADD would refuse; it expires by itself.)
READERS_KEY = "overview:recent-readers"
READER_PAGES_KEY = "overview:reader-pages:{user_id}"
READERS_SECONDS = 24 * 3600
READERS_MAX = 50
# The unfiltered page and a few filtered views each: what a reader comes back to.
READER_PAGES_MAX = 6
_readers_lock = threading.Lock()


def _remember_reader(user_id: int, page: str = "") -> None:
    now = time.time()
    cutoff = now - READERS_SECONDS
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        key = backend.make_and_validate_key(READERS_KEY)
        pages_key = backend.make_and_validate_key(READER_PAGES_KEY.format(user_id=user_id))
        with backend._cache.get_client(key, write=True).pipeline(transaction=True) as pipe:
            for sorted_set, member, keep in (
                (key, str(user_id), READERS_MAX),
                (pages_key, page, READER_PAGES_MAX),
            ):
                pipe.zadd(sorted_set, {member: now})
                pipe.zremrangebyscore(sorted_set, "-inf", cutoff)
                pipe.zremrangebyrank(sorted_set, 0, -keep - 1)  # keep the `keep` most recent
                pipe.expire(sorted_set, READERS_SECONDS)
            pipe.execute()
        return
    with _readers_lock:
        readers = backend.get(READERS_KEY) or {}
        readers[user_id] = _most_recent({**readers.get(user_id, {}), page: now}, cutoff, READER_PAGES_MAX)
        last_seen = {pk: max(pages.values()) for pk, pages in readers.items()}
        backend.set(READERS_KEY, _most_recent(readers, cutoff, READERS_MAX, seen=last_seen), READERS_SECONDS)


def _most_recent(entries: dict, cutoff: float, keep: int, *, seen: dict | None = None) -> dict:
    """The `keep` entries seen last after `cutoff`, most recent first (`seen`: their times, if the
    values are not)."""
    seen = entries if seen is None else seen
    recent = sorted((name for name in entries if seen[name] > cutoff), key=lambda name: -seen[name])
    return {name: entries[name] for name in recent[:keep]}


def _recent_reader_pages_read() -> list[tuple[int, list[str]]]:
    cutoff = time.time() - READERS_SECONDS
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        key = backend.make_and_validate_key(READERS_KEY)
        client = backend._cache.get_client(key)
        user_ids = [int(member) for member in client.zrevrangebyscore(key, "+inf", f"({cutoff}")]
        with client.pipeline(transaction=False) as pipe:  # one round trip for every reader's pages
            for user_id in user_ids:
                pages_key = backend.make_and_validate_key(READER_PAGES_KEY.format(user_id=user_id))
                pipe.zrevrangebyscore(pages_key, "+inf", f"({cutoff}")
            pages = pipe.execute()
        return [
            (user_id, [page.decode() for page in user_pages])
            for user_id, user_pages in zip(user_ids, pages, strict=True)
            if user_pages
        ]
    readers = backend.get(READERS_KEY) or {}
    return [
        (user_id, list(_most_recent(pages, cutoff, READER_PAGES_MAX)))
        for user_id, pages in readers.items()
        if max(pages.values()) > cutoff
    ]


def recent_reader_pages() -> list[tuple[int, list[str]]]:
    """Users who had an Overview page computed in the last 24 hours, most recent first, each with
    their pages (see _reader_page), most recent first."""
    return _cache_call(_recent_reader_pages_read) or []


def overview_warm(*, readers: list[tuple[AbstractBaseUser, list[str]]]) -> dict[str, int]:
    """Render and cache the Overview pages of `readers` (users with their pages) not cached yet for
    the current data version, so the first of them to come back after any write gets it from the
    cache. The unfiltered pages go first (where readers land), then the filtered ones, each in the
    readers' order. Users of one scope share an entry: the first renders it, the others find it
    cached. A request of the user's own is built with the page's query (the chrome is not
    rendered), so its cache key is the one the view computes for that request."""
    rendered = cached = 0
    path = reverse("attribution:overview")
    queue = [(user, page) for user, pages in readers for page in pages]
    queue.sort(key=lambda item: item[1] != "")  # stable: readers' order kept within each group
    with translation.override(settings.LANGUAGE_CODE):
        for user, page in queue:
            request = HttpRequest()
            request.method = "GET"
            request.path = request.path_info = path
            request.GET = QueryDict(page)
            request.user = user
            key = overview_cache_key(request)
            if _cache_call(cache.get, key) is not None:
                cached += 1
                continue
            _overview_render(request, key)
            rendered += 1
    return {"rendered": rendered, "cached": cached}


# The data version the last finished warm-up started from, and the claim of the one running (held
# at most as long as overview_warm_task may run, so a killed worker's claim lapses).
WARMED_VERSION_KEY = "overview:warmed-version"
WARMING_KEY = "overview:warming"
WARMING_SECONDS = 130


def overview_warm_recent() -> dict[str, int]:
    """Warm the recent readers' pages (recent_reader_pages) if the data version moved since the last
    warm-up: two queries (the fold, a no-op below FOLD_AFTER rows, and the version) and one cache
    read when it has not (the beat runs this every 30 s).

    One warm-up at a time: the one enqueued after a task and the beat's would otherwise render the
    same scopes side by side. The one that finds the claim taken stops; the version is recorded only
    when a warm-up finishes, and as read before it started, so a write made meanwhile (or a warm-up
    that stopped) is caught up by the next beat, which skips the pages already cached. The data
    version's change rows are folded here too (the version stays the same), so reading it stays one
    small scan."""
    data_version_fold()
    version = data_version()
    if _cache_call(cache.get, WARMED_VERSION_KEY) == version:
        return {"rendered": 0, "cached": 0}
    if not _cache_call(cache.add, WARMING_KEY, version, WARMING_SECONDS):
        return {"rendered": 0, "cached": 0, "busy": 1}
    try:
        readers = recent_reader_pages()
        users = get_user_model().objects.filter(pk__in=[pk for pk, _ in readers], is_active=True).in_bulk()
        result = overview_warm(readers=[(users[pk], pages) for pk, pages in readers if pk in users])
        _cache_call(cache.set, WARMED_VERSION_KEY, version, READERS_SECONDS)
    finally:
        _cache_call(cache.delete, WARMING_KEY)
    return result


def _cache_call(method, *args):
    """The cache is a shortcut, not a dependency: with Redis unreachable the page is computed (as
    it was before the cache) and the failure logged, instead of the Overview answering 500."""
    try:
        return method(*args)
    except RedisError:
        logger.warning("Overview cache unavailable; computing the page", exc_info=True)
        return None


# Bump when the content's template or what feeds it changes shape, so a deploy never serves a
# page cached by the previous release.
_CACHE_FORMAT = 4
_FILTER_FIELDS = tuple(OverviewFilterForm.base_fields)


def overview_cache_key(request: HttpRequest) -> str:
    """Everything the content depends on: the data version (any write to what the page reads
    changes it, attribution/costs/data_version.py), the user's visible scope (every team, or which
    teams: a lead's page is never served to anyone who sees other teams), the filters as given
    (bound or not, raw values, so the form's errors are the same too; an empty field apart from an
    absent one, which the form renders differently), today, the language and the currency."""
    user = request.user
    if user_reads_everything(user):
        scope = "all"
    else:
        scope = "teams:" + ",".join(
            str(pk) for pk in sorted(Team.objects.restrict(user).order_by().values_list("pk", flat=True))
        )
    parts = [
        str(_CACHE_FORMAT),
        data_version(),
        timezone.localdate().isoformat(),
        translation.get_language() or "",  # number formats (one language per process today)
        settings.REPORTING_CURRENCY,
        scope,
        "bound" if request.GET else "unbound",
        json.dumps(_filters_given(request)),
    ]
    return "overview:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _filters_given(request: HttpRequest) -> dict[str, str]:
    """The filter fields in the query, as the form reads them (the last value of a repeated one)."""
    return {name: request.GET[name] for name in _FILTER_FIELDS if name in request.GET}


def _overview_context(request: HttpRequest) -> dict:
    choices = selectors.overview_filter_choices(user=request.user)
    form = OverviewFilterForm(request.GET or None, choices=choices)
    filters = form.to_filters()
    today: dt.date = timezone.localdate()
    overview = selectors.overview_build(
        user=request.user, filters=filters, currency=settings.REPORTING_CURRENCY, today=today
    )
    if not form.is_bound:
        # Show the defaulted range in the date inputs so the user sees what they are looking at.
        form = OverviewFilterForm(initial={"start": overview.start, "end": overview.end}, choices=choices)
    links = _ExplorerLinks(overview=overview, filters=filters, choices=choices)
    links.link_figures(overview.figures)
    for row in overview.top_deployments:
        if row.get("deployment__slug"):
            row["explorer_url"] = links.url(group_by="service", f_deployment=row["deployment__slug"])
    _label_tables(overview)
    top_movers = movers.top_movers(user=request.user, currency=settings.REPORTING_CURRENCY)
    explore = links.cards()
    return {
        "form": form,
        "overview": overview,
        "figures": overview.figures,
        "movers": top_movers,
        "tables": {
            "top_deployments": overview_rows.top_deployment_rows(overview),
            "accuracy_groups": overview_rows.accuracy_group_rows(overview),
            "accuracy": overview_rows.accuracy_rows(overview),
            "unit_costs": overview_rows.unit_cost_rows(overview),
        },
        "explore": explore,
        # Each chart with the explorer link that explains it (a loop over the links per chart cost more).
        "charts": [(chart, explore.get(chart.key, "")) for chart in overview.charts],
        # Open alerts (governance) and routing savings (routing), registered by those layers.
        "panels": overview_panels(user=request.user, month_start=overview.month_start, today=overview.end),
    }


def _label_tables(overview: selectors.Overview) -> None:
    """Links, day labels and the accuracy rows' conditional cells, each worked out once: the page
    lists some 50 rows, and `{% url %}`, `|date` and the `{% if %}`s and loop per row cost the
    template several ms.

    The accuracy page's path is reversed once and each slug quoted the way reverse() quotes it;
    a day is formatted as the `date` filter formats it, once per distinct day."""
    placeholder = "__slug__"
    accuracy_path = reverse("attribution:deployment-accuracy", args=[placeholder])
    day_labels: dict[dt.date, str] = {}

    def day_label(day: dt.date | None) -> str:
        if day is None:
            return ""
        if day not in day_labels:
            day_labels[day] = formats.date_format(day, "j M")
        return day_labels[day]

    floatfmt = floatfmt_in_current_language()
    for row in overview.estimate_accuracy:
        row.accuracy_url = accuracy_path.replace(placeholder, quote(row.deployment_slug, safe=_URL_SAFE))
        row.last_day_label = day_label(row.last_day)
        # The cells with a choice in them, as the template wrote them ("—" without a figure).
        row.mape_text = "—" if row.mape_percent is None else f"{floatfmt(row.mape_percent, 1)} %"
        row.bias_text = (
            "—"
            if row.bias_percent is None
            else f"{'+' if row.bias_percent > 0 else ''}{floatfmt(row.bias_percent, 1)} %"
        )
        row.factor_cells = (
            format_html_join(
                "",
                '<div title="{}">×{}</div>',
                ((basis, floatfmt(factor, 3)) for basis, factor in row.calibration_factors),
            )
            or "—"
        )
    for row in overview.unit_costs:
        row["day_label"] = day_label(row["day"])


# What reverse() leaves unquoted in a URL (django.urls.resolvers).
_URL_SAFE = RFC3986_SUBDELIMS + "/~:@"


class _ExplorerLinks:
    """Explorer URLs that explain the overview's figures: the same range and filters, grouped by
    what the figure is split by. The explorer reads the billed rollup, before shared pools are
    allocated to teams, so a team's figure there is its directly billed part."""

    def __init__(self, *, overview, filters: selectors.OverviewFilters, choices: dict) -> None:
        self.start, self.end, self.month_start = overview.start, overview.end, overview.month_start
        self.team_by_id = dict(choices["team_slug_by_id"])
        self.team_by_name = dict(choices["team_slug_by_name"])
        self.model_by_id = dict(choices["model_slug_by_id"])
        self.model_by_name = dict(choices["model_slug_by_name"])
        # Reversed once: the page asks for some 65 URLs, and each reverse() costs about 80 us.
        self.explorer_path = reverse("attribution:explorer")
        self.base_filters: dict[str, str] = {}
        if filters.provider:
            self.base_filters["f_provider"] = filters.provider
        if filters.team == selectors.UNALLOCATED_TEAM:
            self.base_filters["f_team"] = explorer.NONE_LABEL
        elif filters.team in self.team_by_id:
            self.base_filters["f_team"] = self.team_by_id[filters.team]
        if filters.model_id is not None and str(filters.model_id) in self.model_by_id:
            self.base_filters["f_model"] = self.model_by_id[str(filters.model_id)]
        # What every URL shares, encoded once (the page asks for some 65 URLs and urlencode was ~4 % of
        # its CPU): a URL then encodes only its own group, granularity and extra filters.
        self.shared_keys = {"start", "end", "group_by", "granularity", *self.base_filters}
        self.encoded_filters = "&" + urlencode(self.base_filters) if self.base_filters else ""
        self.encoded_range = {
            month: self.explorer_path
            + "?"
            + urlencode(
                {
                    "start": (self.month_start if month else self.start).isoformat(),
                    "end": self.end.isoformat(),
                }
            )
            for month in (False, True)
        }

    def url(self, *, group_by: str, month: bool = False, granularity: str = "day", **extra: str) -> str:
        start = self.month_start if month else self.start
        if granularity == "day" and (self.end - start).days + 1 > explorer.MAX_RANGE_DAYS["day"]:
            # The Overview reads up to three years; the explorer shows that many days by week.
            granularity = "week"
        if self.shared_keys.isdisjoint(extra):
            # The same text as urlencode of the whole query below, in the same order.
            return "".join(
                [
                    self.encoded_range[month],
                    "&group_by=",
                    quote_plus(group_by),
                    "&granularity=",
                    quote_plus(granularity),
                    self.encoded_filters,
                    *(f"&{quote_plus(key)}={quote_plus(str(value))}" for key, value in extra.items()),
                ]
            )
        # An extra filter replaces a shared one in its place (the unallocated card's team).
        query = {
            "start": start.isoformat(),
            "end": self.end.isoformat(),
            "group_by": group_by,
            "granularity": granularity,
            **self.base_filters,
            **extra,
        }
        return self.explorer_path + "?" + urlencode(query)

    def cards(self) -> dict[str, str]:
        return {
            # These two figures add estimates to the bills: the explorer says how much (`note`).
            "spend": self.url(group_by="provider", note="spend"),
            "effective": self.url(group_by="provider", cost="amortized"),
            "month_to_date": self.url(
                group_by="provider", month=True, granularity="month", note="month_to_date"
            ),
            "unallocated": self.url(group_by="service", f_team=explorer.NONE_LABEL),
            "line_items": self.url(group_by="account"),
            "by_provider": self.url(group_by="provider"),
            "by_team": self.url(group_by="team"),
            "by_model": self.url(group_by="model", granularity="month"),
        }

    def link_figures(self, figures: dict[str, dict]) -> None:
        """Each series carries the explorer URL that explains it (`meta` of its trace: one URL, not
        one copy per day, which made up most of the page's bytes and of its JSON escaping); a bar of
        the model chart carries its own model's (customdata). overview.js opens it on click."""
        labels = {design.provider_label(code): code for code in Provider.values}
        for trace in figures.get("by_provider", {}).get("data", []):
            code = labels.get(str(trace.get("name", "")).removesuffix(selectors.ESTIMATED_SUFFIX))
            if code:
                self._attach(trace, self.url(group_by="service", f_provider=code))
        for trace in figures.get("by_team", {}).get("data", []):
            name = str(trace.get("name", "")).removesuffix(selectors.ESTIMATED_SUFFIX)
            if name.startswith(selectors.UNALLOCATED_LABEL):
                self._attach(trace, self.url(group_by="service", f_team=explorer.NONE_LABEL))
            elif name in self.team_by_name:
                self._attach(trace, self.url(group_by="model", f_team=self.team_by_name[name]))
        for trace in figures.get("by_model", {}).get("data", []):
            trace["customdata"] = [
                self.url(group_by="deployment", granularity="month", f_model=self.model_by_name[label])
                if label in self.model_by_name
                else ""
                for label in trace.get("y", [])
            ]

    @staticmethod
    def _attach(trace: dict, url: str) -> None:
        trace["meta"] = {"explorer_url": url}
