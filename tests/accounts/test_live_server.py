"""The running ASGI server, driven by real clients: websocket handshakes and close codes as a
browser or app sees them (WebsocketCommunicator cannot tell a close before accept from 4401),
and an oversized upload refused before its body is sent."""

import asyncio
import json
import socket

import pytest
import websockets
from channels.db import database_sync_to_async as sync_to_async  # closes its DB connections

from accounts.services import device_token_create
from tests.factories import UserFactory
from tests.live import running_asgi_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="module")
def server_port(django_db_setup):
    with running_asgi_server(WS_AUTH_TIMEOUT="1") as port:
        yield port


@sync_to_async
def user_and_key():
    user = UserFactory()
    return user, device_token_create(user=user, device_name="real client")[1]


async def test_real_client_token_subprotocol_handshake(server_port):
    user, key = await user_and_key()
    async with websockets.connect(f"ws://127.0.0.1:{server_port}/ws/events/", subprotocols=["token", key]) as ws:
        assert ws.subprotocol == "token"
        hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert hello["type"] == "hello" and hello["data"]["user_id"] == str(user.pk)


async def test_real_client_first_message_auth(server_port):
    user, key = await user_and_key()
    async with websockets.connect(f"ws://127.0.0.1:{server_port}/ws/events/") as ws:
        await ws.send(json.dumps({"type": "auth", "token": key}))
        hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert hello["data"]["user_id"] == str(user.pk)


async def test_real_client_sees_4401_for_a_bad_token(server_port):
    async with websockets.connect(f"ws://127.0.0.1:{server_port}/ws/events/", subprotocols=["token", "bogus"]) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 4401


async def test_real_client_sees_4401_when_no_credentials_arrive(server_port):
    async with websockets.connect(f"ws://127.0.0.1:{server_port}/ws/events/") as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 4401


async def test_real_client_foreign_origin_is_refused(server_port):
    _, key = await user_and_key()
    async with websockets.connect(
        f"ws://127.0.0.1:{server_port}/ws/events/", subprotocols=["token", key], origin="https://evil.example"
    ) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 4403


def test_20mb_upload_is_refused_before_the_body_is_sent(server_port):
    """Only the headers go out; the server answers 413 JSON without waiting for the body."""
    with socket.create_connection(("127.0.0.1", server_port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {20 * 1024 * 1024}\r\n\r\n".encode()
        )
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body)["error"]["code"] == "request_too_large"


def test_api_and_docs_are_served(server_port):
    import httpx

    base = f"http://127.0.0.1:{server_port}"
    assert httpx.get(f"{base}/api/v1/").status_code == 200
    assert httpx.get(f"{base}/api/schema/").status_code == 200
    missing = httpx.get(f"{base}/api/v1/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_forged_forwarded_for_does_not_dodge_the_login_throttle(server_port, settings):
    """uvicorn trusts X-Forwarded-For from loopback unless told not to: the project's servers
    are told not to, so 25 logins with changing headers still come from one address."""
    import httpx

    statuses = []
    for i in range(25):
        response = httpx.post(
            f"http://127.0.0.1:{server_port}/api/v1/auth/login",
            json={"email": f"nobody{i}@example.com", "password": "wrong", "device_name": "x"},
            headers={"X-Forwarded-For": f"10.0.{i}.1", "X-Real-IP": f"10.0.{i}.1"},
        )
        statuses.append(response.status_code)
    assert 429 in statuses, statuses
    assert statuses.index(429) <= 20  # the per-address auth throttle (20/min)


def test_debug_off_needs_an_smtp_mail_backend():
    """Reset links must never land in a log: console, file or no mail backend stops the start."""
    import os
    import subprocess
    import sys

    from tests.live import ROOT

    base = {k: v for k, v in os.environ.items() if k != "EMAIL_URL"}
    base.update(DEBUG="false", ENV_FILE="")
    for email_url in (None, "consolemail://", "filemail:///tmp/mail"):
        env = dict(base) if email_url is None else {**base, "EMAIL_URL": email_url}
        proc = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env={
            **env, "DJANGO_SETTINGS_MODULE": "config.settings"}, capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0 and "EMAIL_URL must name an SMTP server" in proc.stderr, (email_url, proc.stderr)
    ok = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env={
        **base, "EMAIL_URL": "smtp+tls://user:pass@smtp.example.com:587", "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr


def test_with_a_proxy_only_its_forwarded_for_counts(django_db_setup):
    """NUM_PROXIES=1 with the proxy at 10.9.9.9: a client on loopback is no trusted proxy, so
    its own X-Forwarded-For is ignored and the throttle still sees one address."""
    import httpx

    from tests.live import running_asgi_server

    with running_asgi_server(NUM_PROXIES="1", FORWARDED_ALLOW_IPS="10.9.9.9") as port:
        statuses = [
            httpx.post(f"http://127.0.0.1:{port}/api/v1/auth/login",
                       json={"email": f"nobody{i}@example.com", "password": "wrong", "device_name": "x"},
                       headers={"X-Forwarded-For": f"10.1.{i}.1"}).status_code
            for i in range(22)
        ]
    assert 429 in statuses, statuses
