"""`make serve` and `make worker`, started as a deployment starts them: the 413 guard before the
body, the JSON error shape, the websocket handshake on the served port; both clusters' heartbeats."""

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time

import httpx
import pytest
import websockets
from channels.db import database_sync_to_async

from accounts.services import device_token_create
from ops.models import WorkerHeartbeat
from tests.factories import UserFactory
from tests.live import ROOT, free_port, service_env, stop_process_group, wait_for_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def make(target: str, log, **env: str) -> subprocess.Popen:
    return subprocess.Popen(["make", "-s", target, f"VENV={sys.prefix}"], cwd=ROOT, env=service_env(**env),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture
def served(django_db_setup):
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = make("serve", log, HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY="2", MAX_REQUEST_BYTES="1000000")
        try:
            wait_for_port(port, proc, timeout=60)
            yield port
        finally:
            stop_process_group(proc)


def chunked_post(port: int, path: str, chunks: list[bytes], content_type: str, token: str = "") -> str:
    """The whole answer to a POST sent with Transfer-Encoding: chunked (the server closes after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        auth = f"Authorization: Token {token}\r\n" if token else ""
        raw.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n{auth}"
                    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode())
        try:
            for chunk in chunks:
                raw.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            raw.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused part-way: the answer is already there to read
        received = []
        try:
            while chunk := raw.recv(65536):
                received.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(received).decode("latin-1")


@database_sync_to_async
def a_token() -> str:
    return device_token_create(user=UserFactory(), device_name="served")[1]


async def test_make_serve_keeps_the_guard_the_error_shape_and_the_websocket(served):
    base = f"http://127.0.0.1:{served}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        missing = await http.get("/api/v1/nothing-here")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert missing.headers["X-Request-ID"]
        unauth = await http.get("/api/v1/user/me")
        assert unauth.status_code == 401 and unauth.json()["error"]["code"] == "not_authenticated"
        assert (await http.get("/healthz")).json() == {"status": "ok"}

    # 413 before the body: a declared 100 MB upload is refused without sending a byte of it.
    with socket.create_connection(("127.0.0.1", served), timeout=10) as raw:
        raw.sendall(b"POST /api/v1/tts/voices/clone HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 104857600\r\n\r\n")
        chunks = []
        while chunk := raw.recv(65536):  # the server closes after the 413
            chunks.append(chunk)
        answer = b"".join(chunks).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413") and '"request_too_large"' in answer

    token = await a_token()
    # A chunked body (no Content-Length) is counted as it arrives and cut off past the limit...
    answer = chunked_post(served, "/api/v1/tts/voices/clone", [b"x" * 100_000] * 30, "multipart/form-data; boundary=x",
                          token)
    assert answer.startswith("HTTP/1.1 413") and '"request_too_large"' in answer
    # ...and one within it reaches Django whole: a login's JSON, read through the WSGI handler.
    login = [b'{"email": "nobody@example.com", ', b'"password": "x", "device_name": "t"}']
    answer = chunked_post(served, "/api/v1/auth/login", login, "application/json")
    assert answer.startswith("HTTP/1.1 401") and "Email or password is wrong." in answer

    async with websockets.connect(f"ws://127.0.0.1:{served}/ws/events/", subprotocols=["token", token]) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert hello["type"] == "hello"


def test_make_worker_runs_both_clusters_and_stops_on_sigterm(django_db_setup):
    with tempfile.TemporaryFile() as log:
        proc = make("worker", log, WORKER_HEARTBEAT_SECONDS="0.5")
        try:
            deadline = time.monotonic() + 60
            while set(WorkerHeartbeat.objects.values_list("cluster", flat=True)) != {"main", "tts"}:
                assert proc.poll() is None and time.monotonic() < deadline, "both clusters should beat"
                time.sleep(0.3)
        finally:
            started = time.monotonic()
            stop_process_group(proc, leader_only=True)
            assert time.monotonic() - started < 30
