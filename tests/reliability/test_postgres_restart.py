"""Postgres restarts under a running service: the next requests succeed. The service runs as
`make serve` runs it (pooled connections) against a Postgres cluster of the test's own, which the
test restarts; the machine's shared server is never touched."""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager

import httpx
import pytest

from tests.live import ROOT, free_port, running_asgi_server, service_env

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not glob.glob("/usr/lib/postgresql/*/bin/initdb"), reason="needs Debian's PostgreSQL server binaries")]


def _bin(name: str) -> str:
    return sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1]


def _as_postgres(*argv: str) -> list[str]:
    # initdb and the server refuse to run as root, which CI is.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)


@contextmanager
def private_postgres():
    """(url, restart): a throwaway cluster on its own port, migrated for the project."""
    data = tempfile.mkdtemp(prefix="pg-restart-")
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    ctl = _as_postgres(_bin("pg_ctl"), "-D", data, "-l", f"{data}/log", "-w", "-o",
                       f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off")
    try:
        subprocess.run(_as_postgres(_bin("initdb"), "-D", data, "-A", "trust", "-U", "postgres"), check=True,
                       capture_output=True)
        subprocess.run([*ctl, "start"], check=True, capture_output=True)
        subprocess.run(_as_postgres(_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                    "storybook"), check=True, capture_output=True)
        url = f"postgres://postgres@127.0.0.1:{port}/storybook"
        migrated = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                                  env=service_env(DATABASE_URL=url), capture_output=True, text=True, timeout=300)
        assert migrated.returncode == 0, migrated.stderr[-3000:]

        def restart() -> None:
            subprocess.run([*ctl, "-m", "fast", "restart"], check=True, capture_output=True, timeout=60)

        yield url, restart
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def test_the_next_requests_after_a_restart_succeed():
    with private_postgres() as (url, restart), \
            running_asgi_server(DATABASE_URL=url, DB_POOL="true", DB_POOL_MIN_SIZE="4") as port, \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15) as api:
        signup = api.post("/api/v1/auth/signup", json={"email": "parent@example.com",
                                                       "password": "a-long-bedtime-story-42", "device_name": "phone"})
        assert signup.status_code == 201, signup.content
        headers = {"Authorization": f"Token {signup.json()['token']}"}
        for _ in range(8):  # every pooled connection has been used
            assert api.get("/api/v1/user/me", headers=headers).status_code == 200
        restart()  # every connection the pool holds is now dead
        api.timeout = httpx.Timeout(5)  # a phone gives up long before a backoff per dead connection ends
        answers = [api.get("/api/v1/user/me", headers=headers).status_code for _ in range(12)]
        answers.append(api.patch("/api/v1/user/me", headers=headers, json={"display_name": "Mum"}).status_code)
        assert answers == [200] * 13
