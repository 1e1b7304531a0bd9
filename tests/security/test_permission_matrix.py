"""Who may call what: every page and every API operation x eight callers (issue 15).

The API operations come from the OpenAPI schema and the pages from the URLconf, so an endpoint
added later is in the matrix the moment it is routed, without anyone listing it here. What each
caller must get is decided by the rules below, most specific first:

- anonymous callers get 401 from the API and a redirect to the login page from pages;
- the read-only API token (finance's, scope `read`) reads what finance reads and gets 403 on every
  unsafe method of every endpoint (defect 1);
- the gateway token works only on gateway endpoints (their schema security is `gatewayToken`);
- viewers never write; the admin- and finance-only reads and writes below refuse team roles;
- a detail URL answers 404 to a caller whose list does not show that row;
- no caller ever gets a 5xx;
- and what a response shows: team roles never see another team's figures nor whole-account figures
  (defect 8), checked by marker amounts that exist once in the database.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

from attribution.models import IngestRun, UnitCost
from governance.models import AuditEvent, BudgetThreshold
from governance.services import api_token_create
from routing.models import Gateway
from routing.services import gateway_token_rotate
from tests.factories import (
    BudgetFactory,
    CloudAccountFactory,
    DailyCostFactory,
    DeploymentFactory,
    MembershipFactory,
    ServedModelFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

CALLERS = ["anonymous", "viewer", "lead", "other_lead", "finance", "admin", "read_token", "gateway_token"]
TEAM_ROLES = {"viewer", "lead", "other_lead"}
SAFE = {"get", "head", "options"}

# Reads and writes only admin and finance may make (team roles get 403). Regexes over schema paths.
ADMIN_FINANCE_READS = [r"^/api/v1/audit-events", r"^/api/v1/rule-suggestions"]
ADMIN_FINANCE_WRITES = [
    r"^/api/v1/dimension-rules",
    r"^/api/v1/rule-suggestions",
    r"^/api/v1/exchange-rates",
    r"^/api/v1/accounts/\{id\}/(sync|test-connection)$",
]
# Pages for admin and finance only; pages that create something (viewers get 403 on those).
ADMIN_FINANCE_PAGES = [r"^/governance/audit/", r"^/ingestion/upload/"]
# Pages for admin only (users and their roles): finance gets 403 as well.
ADMIN_ONLY_PAGES = [r"^/settings/members/"]
CREATE_PAGES = [r"/new/?$"]
# Marker amounts: each exists once, in rows of one team (or of the whole account).
ALPHA_MARKERS = ["4101.0101", "5101.0101", "6101.0101"]  # alpha's daily cost, budget, threshold
BETA_MARKERS = ["4202.0202", "5202.0202", "6202.0202"]  # beta's daily cost, budget, threshold
ACCOUNT_MARKERS = ["9303.0303", "9404.0404"]  # an ingest run's account total, a deployment's day


@pytest.fixture
def world(monkeypatch):
    # A connection test as admin really runs: make it fail fast instead of looking for AWS.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    call_command("setup_roles", verbosity=0)
    # No export configured: a connection test (as admin) fails at once, naming what is missing.
    account = CloudAccountFactory(slug="aws-matrix", source_settings={})
    alpha, beta = TeamFactory(slug="alpha"), TeamFactory(slug="beta")
    model = ServedModelFactory(slug="llm")
    deployment = DeploymentFactory(slug="llm-aws", model=model, account=account)
    DailyCostFactory(account=account, team=alpha, model=model, billed_cost=Decimal(ALPHA_MARKERS[0]))
    DailyCostFactory(account=account, team=beta, model=model, billed_cost=Decimal(BETA_MARKERS[0]))
    for team, markers in ((alpha, ALPHA_MARKERS), (beta, BETA_MARKERS)):
        budget = BudgetFactory(team=team, amount=Decimal(markers[1]))
        BudgetThreshold.objects.create(budget=budget, amount=Decimal(markers[2]), basis="forecast")
    IngestRun.objects.create(
        account=account,
        billing_period_start="2026-10-01",
        billing_period_end="2026-11-01",
        state="succeeded",
        source_sums={"billed_cost": ACCOUNT_MARKERS[0]},
        database_sums={"billed_cost": ACCOUNT_MARKERS[0]},
    )
    UnitCost.objects.create(
        day="2026-10-01",
        model=model,
        deployment=deployment,
        provider="aws",
        currency="USD",
        effective_cost=Decimal(ACCOUNT_MARKERS[1]),
    )

    users = {
        "viewer": UserFactory(username="vera", roles=["viewer"]),
        "lead": UserFactory(username="lena", roles=["team_lead"]),
        "other_lead": UserFactory(username="olaf", roles=["team_lead"]),
        "finance": UserFactory(username="fiona", roles=["finance"]),
        "admin": UserFactory(username="ada", roles=["admin"]),
    }
    MembershipFactory(user=users["viewer"], team=alpha, role="member")
    MembershipFactory(user=users["lead"], team=alpha, role="lead")
    MembershipFactory(user=users["other_lead"], team=beta, role="lead")
    AuditEvent.objects.create(actor_label="ada", action="create", object_type="x", object_id="1")

    clients = {"anonymous": Client()}
    for name, user in users.items():
        clients[name] = Client()
        clients[name].force_login(user)
    _, read_token = api_token_create(user=users["finance"], name="ro", scopes=["read"])
    clients["read_token"] = Client(HTTP_AUTHORIZATION=f"Bearer {read_token}")
    gateway = Gateway.objects.create(name="edge", slug="edge", kind="pull_only")
    clients["gateway_token"] = Client(
        HTTP_AUTHORIZATION=f"Bearer {gateway_token_rotate(gateway=gateway, actor=None)}"
    )
    return {"clients": clients, "users": users, "account": account}


def api_operations() -> list[tuple[str, str, bool]]:
    """(path, method, for_gateways) of every operation in the OpenAPI schema; gateway endpoints
    are those that accept a gateway token (`gatewayToken` security)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            schemes = {name for requirement in operation.get("security", []) for name in requirement}
            operations.append((path, method, "gatewayToken" in schemes))
    return sorted(operations)


def page_routes() -> list[str]:
    """Every HTML route of the URLconf without parameters, outside the API and the admin."""
    found: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if not route.startswith(("api/", "admin/")):
                    walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and "<" not in route and not route.startswith("api/"):
                found.append("/" + route.lstrip("^").rstrip("$"))

    walk(get_resolver().url_patterns, "")
    return sorted(set(found)) + ["/admin/", "/api/docs/", "/api/schema/"]


def matches(path: str, patterns: list[str]) -> bool:
    return any(re.search(pattern, path) for pattern in patterns)


def concrete(path: str, world: dict, admin: Client) -> str:
    """The schema path with its ids filled from a row the admin can see (or a missing id)."""
    if "{" not in path:
        return path
    collection = path.split("/{", 1)[0]
    row_id = 999_999
    response = admin.get(collection)
    if response.status_code == 200 and "application/json" in response.get("Content-Type", ""):
        body = response.json()
        rows = body.get("results", body) if isinstance(body, dict) else body
        if isinstance(rows, list) and rows and isinstance(rows[0], dict) and "id" in rows[0]:
            row_id = rows[0]["id"]
    elif collection.endswith("/accounts"):
        row_id = world["account"].pk
    return re.sub(r"\{[^}]+\}", str(row_id), path)


def expected_api(caller: str, path: str, method: str, gateway_only: bool) -> set[int] | str:
    """The status codes the rules allow; "allowed" means any non-auth answer below 500."""
    if caller == "anonymous":
        return {401}
    if caller == "gateway_token":
        return "allowed" if gateway_only else {401}
    if gateway_only:
        return {401, 403}  # a user's session or API token is not a gateway
    if caller == "read_token":
        return "allowed" if method in SAFE else {403}
    if method in SAFE:
        if caller in TEAM_ROLES and matches(path, ADMIN_FINANCE_READS):
            return {403}
        return "allowed"
    if caller == "viewer":
        return "refused"  # viewers read only: some 4xx (validation may answer before the role)
    if caller in TEAM_ROLES and matches(path, ADMIN_FINANCE_WRITES):
        return {403}
    return "allowed"


def call(client: Client, method: str, url: str):
    if method in SAFE:
        return getattr(client, method)(url)
    return getattr(client, method)(url, data={}, content_type="application/json")


@pytest.mark.parametrize("caller", CALLERS)
def test_every_api_operation_answers_each_caller_as_the_rules_say(world, caller):
    client, admin = world["clients"][caller], world["clients"]["admin"]
    operations = api_operations()
    assert len(operations) > 30  # the schema really was read
    wrong = []
    for path, method, gateway_only in operations:
        url = concrete(path, world, admin)
        response = call(client, method, url)
        expected = expected_api(caller, path, method, gateway_only)
        status = response.status_code
        if expected == "refused":
            ok = 400 <= status < 500
        elif expected == "allowed":
            ok = status < 500 and status not in (401, 403)
            # A row hidden from a caller's list is hidden from its detail URL too.
            ok = ok or (status == 404 and "{" in path)
        else:
            ok = status in expected
        if not ok:
            wrong.append(f"{method.upper()} {url}: {status} (expected {expected}) {response.content[:160]!r}")
        if caller == "read_token" and method not in SAFE and not gateway_only and status == 403:
            if "scope" not in response.json()["detail"]:
                wrong.append(f"{method.upper()} {url}: 403 without naming the missing scope")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize("caller", CALLERS)
def test_every_page_answers_each_caller_as_the_rules_say(world, caller):
    client = world["clients"][caller]
    user = world["users"].get(caller)
    wrong = []
    for route in page_routes():
        response = client.get(route)
        status = response.status_code
        if route in ("/healthz", "/readyz", "/login/"):
            ok = status in (200, 503) if route == "/readyz" else status == 200
        elif route == "/favicon.ico":
            ok = status == 302 and response["Location"].endswith("favicon.svg")  # public, like the icon
        elif route == "/logout/":
            ok = status == 405  # logging out is a POST
        elif status == 405:
            # Not a page but a machine endpoint outside /api/ (Envoy's xDS paths): POST-only,
            # for gateways. Everyone else is refused.
            status = client.post(route, data={}, content_type="application/json").status_code
            ok = status < 500 if caller == "gateway_token" else status in (401, 403)
        elif route == "/api/schema/":
            ok = status == 200 if (user is not None or caller == "read_token") else status == 401
        elif user is None:  # anonymous, and tokens, which pages do not accept
            ok = status == 302 and "/login/" in response["Location"]
        elif route == "/admin/":
            ok = status == 200 if user.is_superuser else status == 302  # superusers only
        elif caller != "admin" and matches(route, ADMIN_ONLY_PAGES):
            ok = status == 403
        elif caller in TEAM_ROLES and matches(route, ADMIN_FINANCE_PAGES):
            ok = status == 403
        elif caller == "viewer" and matches(route, CREATE_PAGES):
            ok = status == 403
        else:
            ok = status == 200
        if not ok:
            wrong.append(f"GET {route}: {status}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize(
    ("caller", "hidden"),
    [
        ("viewer", BETA_MARKERS + ACCOUNT_MARKERS),
        ("lead", BETA_MARKERS + ACCOUNT_MARKERS),
        ("other_lead", ALPHA_MARKERS + ACCOUNT_MARKERS),
    ],
)
def test_team_roles_never_read_other_teams_or_whole_account_figures(world, caller, hidden):
    client, admin = world["clients"][caller], world["clients"]["admin"]
    seen_by_finance = ""
    leaks = []
    for path, method, _ in api_operations():
        if method != "get":
            continue
        url = concrete(path, world, admin)
        body = client.get(url).content.decode()
        leaks += [f"{url} shows {marker}" for marker in hidden if marker in body]
        seen_by_finance += world["clients"]["finance"].get(url).content.decode()
    for route in page_routes():
        body = client.get(route).content.decode()
        leaks += [f"{route} shows {marker}" for marker in hidden if marker in body]
    assert leaks == []
    # The markers are really served to someone who may read them, so the check above can fail.
    assert [marker for marker in hidden if marker not in seen_by_finance] == []
