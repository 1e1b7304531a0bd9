"""/healthz and /readyz against the real Postgres and the real Redis broker."""

from __future__ import annotations

import pytest
from django.db import connection

from config.celery_app import app as celery_app

DEAD_BROKER = "redis://127.0.0.1:1/0"


@pytest.fixture
def dead_broker(monkeypatch):
    # Celery reads the CELERY_BROKER_URL environment variable before its own configuration, so
    # both must point at the dead port for the check to use it.
    monkeypatch.setenv("CELERY_BROKER_URL", DEAD_BROKER)
    original = celery_app.conf.broker_url
    celery_app.conf.broker_url = DEAD_BROKER
    try:
        yield
    finally:
        celery_app.conf.broker_url = original


@pytest.fixture
def unreachable_database(transactional_db):
    """Point the default connection at a port where no Postgres listens, then restore it.

    Needs transactional_db: with the usual per-test transaction the connection could not be closed.
    """
    connection.close()
    saved = {key: connection.settings_dict[key] for key in ("HOST", "PORT")}
    connection.settings_dict.update({"HOST": "127.0.0.1", "PORT": "1"})
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def test_healthz_answers_ok_without_touching_the_database(client):
    # No django_db mark: any query here would fail the test with "Database access not allowed".
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_ok_when_database_and_broker_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.django_db
def test_readyz_names_the_broker_when_it_is_down(client, dead_broker):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"] == {"database": "ok", "broker": "failing"}
    assert set(body["errors"]) == {"broker"}


def test_readyz_names_the_database_when_it_is_down(client, unreachable_database):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"database": "failing", "broker": "ok"}
    assert set(body["errors"]) == {"database"}
    assert "OperationalError" in body["errors"]["database"]


def test_readyz_refuses_post(client):
    assert client.post("/readyz").status_code == 405
