"""Helpers for tests that run the service in separate processes against the test database."""

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from config.serving import uvicorn_proxy_args, uvicorn_ws_args

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """DATABASE_URL of the database this test runs on (pytest-django's test database)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{db['NAME']}"))


def service_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": test_database_url(),
           "DEBUG": "false", "Q_SYNC": "false", "PYTHONUNBUFFERED": "1"}
    if not os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(extra)
    return env


def stop_process_group(proc: subprocess.Popen, *, leader_only: bool = False, timeout: float = 20.0) -> None:
    """SIGTERM, wait, then SIGKILL whatever is left of the process's group (it must have been
    started with `start_new_session=True`). `leader_only` sends the SIGTERM to the leader alone:
    django-q2's cluster can hang when its workers get the signal too."""
    if proc.poll() is None:
        try:
            if leader_only:
                proc.send_signal(signal.SIGTERM)
            else:
                os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    # The group may outlive its leader (a worker it forked): make sure it is gone.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port}")


@contextmanager
def running_asgi_server(port: int | None = None, **env: str):
    """uvicorn serving config.asgi on `port` (default: a free loopback port); yields the port. Its
    output goes to a file (a pipe nobody reads would fill up and stall the server)."""
    import tempfile

    port = port or free_port()
    server_env = service_env(**env)
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
             "--no-access-log", *uvicorn_proxy_args(server_env), *uvicorn_ws_args()],
            cwd=ROOT, env=server_env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, proc)
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
