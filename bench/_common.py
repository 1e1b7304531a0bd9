"""Helpers shared by the bench scripts: a scratch database, child processes with their peak RSS,
and the one-line-per-figure report format that CI and people read."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def bench_env(database_name: str) -> dict[str, str]:
    """Environment for child processes: a dedicated database on the configured server.

    With DATABASE_URL set, the database name is replaced; unset, the embedded Postgres is used with
    a database of this name (INFERENSYS_EMBEDDED_DATABASE)."""
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    env["DJANGO_DEBUG"] = "false"
    url = env.get("DATABASE_URL", "")
    if url:
        env["DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + database_name
    else:
        env["INFERENSYS_EMBEDDED_DATABASE"] = database_name
    return env


def create_database(env: dict[str, str], database_name: str) -> None:
    """Drop and recreate the scratch database, then migrate it."""
    code = f"""
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
from django.conf import settings
db = dict(settings.DATABASES["default"])
import psycopg
from psycopg import sql
kwargs = dict(host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None,
              dbname="postgres", autocommit=True)
with psycopg.connect(**kwargs) as conn:
    name = sql.Identifier({database_name!r})
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {{}} WITH (FORCE)").format(name))
    conn.execute(sql.SQL("CREATE DATABASE {{}}").format(name))
"""
    # Settings would try to connect to (and for the embedded server, create) the database itself;
    # point them at "postgres" while we recreate the scratch one.
    admin_env = dict(env)
    if admin_env.get("DATABASE_URL"):
        admin_env["DATABASE_URL"] = admin_env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    else:
        admin_env["INFERENSYS_EMBEDDED_DATABASE"] = "postgres"
    subprocess.run([PYTHON, "-c", code], cwd=REPO, env=admin_env, check=True)
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)


@dataclass
class ChildResult:
    seconds: float
    peak_rss_mb: float
    returncode: int
    output: str


def _vm_hwm_mb(pid: int) -> float:
    """The process's own peak RSS (VmHWM, reset at exec), or 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_child(args: list[str], env: dict[str, str]) -> ChildResult:
    """Run a command, returning wall time and that child's own peak RSS.

    Not wait4's ru_maxrss: Linux carries the forking parent's RSS into the child's figure across
    exec, so a bench that generated a large file first would report its own size. VmHWM of the
    exec'd process is polled instead (a high-water mark, so polling misses nothing but the last
    few milliseconds)."""
    started = time.perf_counter()
    peak = 0.0
    with subprocess.Popen(
        args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        chunks: list[str] = []
        reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)
        reader.start()
        while proc.poll() is None:
            peak = max(peak, _vm_hwm_mb(proc.pid))
            time.sleep(0.05)
        reader.join()
        output = "".join(chunks)
    seconds = time.perf_counter() - started
    return ChildResult(seconds, peak, proc.returncode, output)


def report(name: str, value: float, unit: str, op: str, target: float) -> bool:
    passed = {"<": value < target, "<=": value <= target, ">": value > target, ">=": value >= target}[op]
    print(f"BENCH {name}={value:.3f} {unit} (target {op} {target}): {'PASS' if passed else 'FAIL'}")
    return passed
