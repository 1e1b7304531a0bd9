"""`make conformance` picks its scratch database: the configured Postgres server, or the embedded
Postgres when none answers there (bin/focus_conformance.py --prepare-database, run by bin/conformance)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import time
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _conformance_module():
    spec = importlib.util.spec_from_file_location("focus_conformance", ROOT / "bin" / "focus_conformance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def data_dir():
    # Under the project's .data, as in use: the embedded server runs as its own system user, which
    # cannot enter pytest's private temporary folders.
    # One fixed folder, emptied first: the embedded module keeps its lock folder (under the first
    # XDG_RUNTIME_DIR it saw) until the test process exits.
    folder = ROOT / ".data" / "test-conformance-fallback"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder / "postgres", ignore_errors=True)


def test_it_falls_back_to_the_embedded_postgres_when_no_server_answers(data_dir, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    conformance = _conformance_module()
    tmp_path = data_dir
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    url = conformance.database_prepare(
        server="postgres://postgres@127.0.0.1:1", name="conformance_fallback", data_dir=tmp_path
    )
    pgdata = tmp_path / "postgres"
    try:
        assert url == ""
        with psycopg.connect(
            host=str(pgdata), port=5432, user="postgres", dbname="conformance_fallback"
        ) as db:
            assert db.execute("SELECT current_database()").fetchone() == ("conformance_fallback",)
            db.execute("CREATE TABLE leftover (id int)")
        # A second run starts from an empty database again.
        assert (
            conformance.database_prepare(
                server="postgres://postgres@127.0.0.1:1", name="conformance_fallback", data_dir=tmp_path
            )
            == ""
        )
        with psycopg.connect(
            host=str(pgdata), port=5432, user="postgres", dbname="conformance_fallback"
        ) as db:
            assert db.execute("SELECT to_regclass('leftover')").fetchone() == (None,)
    finally:
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGINT)  # the server this test started (cleanup_mode=None)
        for _ in range(50):
            if not (pgdata / "postmaster.pid").exists():
                break
            time.sleep(0.1)


def test_it_recreates_the_database_on_a_server_that_answers(monkeypatch):
    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x").rsplit("/", 1)[0]
    conformance = _conformance_module()
    url = conformance.database_prepare(server=server, name="conformance_probe", data_dir=Path("/nonexistent"))
    try:
        assert url == f"{server}/conformance_probe"
        with psycopg.connect(url) as db:
            assert db.execute("SELECT current_database()").fetchone() == ("conformance_probe",)
    finally:
        with psycopg.connect(server + "/postgres", autocommit=True) as db:
            db.execute("DROP DATABASE IF EXISTS conformance_probe WITH (FORCE)")


def test_it_refuses_a_database_name_that_is_not_an_identifier():
    with pytest.raises(SystemExit, match="CONFORMANCE_DATABASE_NAME"):
        _conformance_module().database_prepare(server="postgres://x", name="a;drop", data_dir=Path("/tmp"))
