"""The benchmark's own Postgres database and Redis db, and the environments of its processes.

Defaults: postgres://postgres@127.0.0.1:5432/storybook_bench and redis://127.0.0.1:6379/14.
Override with BENCH_DATABASE_URL / BENCH_REDIS_URL. Both are wiped at the start of a run, so
the names are guarded: the database name must contain "bench" and the Redis URL must name a
db number other than 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/storybook_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL


def redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL


def _db_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def check_urls(db_url: str, r_url: str) -> None:
    name = _db_name(db_url)
    if "bench" not in name:
        raise SystemExit(f"refusing to drop database {name!r}: a benchmark database name must contain 'bench'")
    db = urlsplit(r_url).path.lstrip("/")
    if not db.isdigit() or db == "0":
        raise SystemExit(f"refusing to flush {r_url!r}: give a Redis db number other than 0 (e.g. .../14)")
    for url in (db_url, r_url):
        host = urlsplit(url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"benchmarks only talk to this machine, not {host!r}")


def reset_database(db_url: str) -> None:
    """Drop and create the benchmark database (connected to the `postgres` maintenance db)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(db_url)
    name = _db_name(db_url)
    admin_url = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def flush_redis(r_url: str) -> None:
    import redis

    client = redis.Redis.from_url(r_url, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


def django_env(db_url: str, r_url: str, **extra: str) -> dict[str, str]:
    """Production-like settings shared by the loader and both servers."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="false",
        SECRET_KEY="bench",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        CSRF_TRUSTED_ORIGINS="http://127.0.0.1",
        EMAIL_URL="smtp://127.0.0.1:25",
        ENV_FILE="",
        DATABASE_URL=db_url,
        REDIS_URL=r_url,
        DB_POOL="false",
        API_CACHE_ENABLED="true",
        API_CACHE_ALLOW_BYPASS="true",
        THROTTLE_USER="1000000/min",
        THROTTLE_ANON="1000000/min",
        THROTTLE_CLONE="1000000/min",
        THROTTLE_TTS="1000000/min",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    proc = subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    if proc.returncode != 0:
        raise SystemExit(f"migrate failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
