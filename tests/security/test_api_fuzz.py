"""Schemathesis over every operation of the OpenAPI schema, in process (WSGI), on the test database:
as an admin token (read and write) and as a read-only token. Zero server errors and zero responses
that contradict the schema (issue 15, defect 6 and "tests that keep this found").

Bounded: SCHEMATHESIS_EXAMPLES generated cases per operation and caller (default 5) plus the
schema's examples, so the module takes a couple of minutes. Schemathesis's coverage phase (boundary
values of every parameter: about 160 cases per operation here, not bounded by max_examples, which
made this module 12 minutes of `make test`) runs only with SCHEMATHESIS_COVERAGE=1; `make fuzz` sets
it and 100 examples.
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from config.wsgi import application
from governance.services import api_token_create
from tests.factories import CloudAccountFactory, DeploymentFactory, TeamFactory, UserFactory

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "5"))
COVERAGE_PHASE = os.environ.get("SCHEMATHESIS_COVERAGE", "") == "1"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _schema() -> schemathesis.schemas.BaseSchema:
    # The schema as the app serves it (drf-spectacular's own renderer), loaded at collection so
    # each operation is its own test; requests go to the WSGI app in this process.
    raw = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
    loaded = schemathesis.openapi.from_dict(raw)
    if not COVERAGE_PHASE:
        loaded.config.phases.update(phases=["examples", "fuzzing"])
    loaded.app = application
    return loaded


schema = _schema()


@pytest.fixture(autouse=True)
def connection_kept_open():
    # The raw WSGI handler closes the database connection around each request, which would end
    # the test's transaction; Django's own test client disconnects the same signal handler.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def tokens():
    # A few rows so detail and filter paths reach real objects; the rest is what the fuzzer sends.
    account = CloudAccountFactory(slug="aws-fuzz", source_settings={})
    TeamFactory(slug="search")
    DeploymentFactory(slug="llm-aws", account=account)
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    finance = UserFactory(username="fiona", roles=["finance"])
    _, read_write = api_token_create(user=admin, name="fuzz-rw", scopes=["read", "write"])
    _, read_only = api_token_create(user=finance, name="fuzz-ro", scopes=["read"])
    return {"admin": read_write, "read_only": read_only}


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_operation_fails_or_contradicts_its_schema(case, tokens, settings_override):
    for token in tokens.values():
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)


@pytest.fixture
def settings_override(settings):
    # Fuzzing sends thousands of requests per token; the rate limit is tested elsewhere.
    settings.API_TOKEN_RATE_PER_MINUTE = 10**9
    return settings
