"""Under ASGI every sync request runs in a thread of its own: a web process that does not pool
must close its connection after each request, or one is left open per thread."""

import asyncio
import os
import time
import uuid

import httpx
import pytest
from django.db import connection

from accounts.services import device_token_create
from tests.factories import UserFactory
from tests import live

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow,
              pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                                 reason="counts connections in pg_stat_activity")]


def open_connections(app_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [app_name])
        return cursor.fetchone()[0]


def settled_connections(app_name: str, most: int) -> int:
    """Connections left once the last requests have finished (each closes after its answer)."""
    deadline = time.monotonic() + 3
    while (count := open_connections(app_name)) > most and time.monotonic() < deadline:
        time.sleep(0.1)
    return count


async def _burst(port: int, key: str, n: int) -> list[int]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        responses = await asyncio.gather(*[
            client.get("/api/v1/user/me", headers={"Authorization": f"Token {key}", "X-Nonce": str(i)})
            for i in range(n)
        ])
    return [r.status_code for r in responses]


@pytest.mark.parametrize("env, most", [({}, 0), ({"DB_POOL": "true", "DB_POOL_MAX_SIZE": "2"}, 2)],
                         ids=["unpooled", "pooled"])
def test_concurrent_requests_leave_no_connection_per_thread(env, most):
    user = UserFactory()
    _, key = device_token_create(user=user, device_name="burst")
    app_name = f"conn-test-{uuid.uuid4().hex[:8]}"
    with live.running_asgi_server(DATABASE_URL=f"{live.test_database_url()}?application_name={app_name}", **env) as port:
        for _ in range(3):
            assert asyncio.run(_burst(port, key, 8)) == [200] * 8
        assert settled_connections(app_name, most) <= most


DATABASE_SETTINGS = """
import django
django.setup()
from django.conf import settings
db = settings.DATABASES["default"]
print(bool(db.get("OPTIONS", {}).get("pool")), db["CONN_MAX_AGE"])
"""


@pytest.mark.parametrize(("argv", "expected"), [(["runserver"], "True 0"), (["qcluster"], "False 60")])
def test_a_queue_cluster_never_pools_and_keeps_one_connection_per_worker(argv, expected):
    """Forked workers sharing a pool's sockets corrupt each other's transactions: a qcluster
    ignores DB_POOL even when the environment sets it for every process."""
    import subprocess
    import sys

    env = live.service_env(DB_POOL="true")
    env.pop("CONN_MAX_AGE", None)
    out = subprocess.run([sys.executable, "-c", DATABASE_SETTINGS, *argv], cwd=live.ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == expected.split()
