"""Clients that stall: an upload that stops mid-body, downloads nobody reads, a client that
leaves mid-body. None of them may hold the threads that serve every other request (a real
server with WEB_THREADS=1, so one held thread would stall it)."""

import asyncio
import socket
import time

import httpx
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from accounts.services import device_token_create
from config.api.middleware import BodySizeLimitMiddleware
from tests.factories import UserFactory
from tests.live import running_asgi_server
from tts.audio_urls import clip_url
from tts.models import AudioClip

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BIG = 8 * 1024 * 1024  # past what loopback socket buffers absorb


def big_clip_path(settings) -> str:
    name = default_storage.save("tts-clips/zz/big.mp3", ContentFile(b"\xff" * BIG))
    clip = AudioClip.objects.create(content_hash="big", file=name, mime_type="audio/mpeg", output_format="mp3_44100_128",
                                    duration_ms=1000, size_bytes=BIG, provider="local", provider_voice_id="v")
    return clip_url(clip_id=clip.pk)[0].lstrip("/")  # a path without a request


def test_stalled_uploads_and_unread_downloads_leave_the_server_answering(settings):
    key = device_token_create(user=UserFactory(), device_name="t")[1]
    path = big_clip_path(settings)
    with running_asgi_server(WEB_THREADS="1", MEDIA_ROOT=str(settings.MEDIA_ROOT)) as port:
        stuck = []
        try:
            for _ in range(2):  # headers and the start of a body, then nothing
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 1000\r\n\r\n{\"email\": ")
                stuck.append(s)
            for _ in range(2):  # a download the client never reads
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", port))
                s.sendall(f"GET /{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                stuck.append(s)
            time.sleep(1)
            started = time.monotonic()
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                assert client.get("/healthz").status_code == 200
                assert client.get("/api/v1/ping", headers={"Authorization": f"Token {key}"}).status_code == 200
            assert time.monotonic() - started < 3
        finally:
            for s in stuck:
                s.close()
        # The download itself works for a client that reads it.
        response = httpx.get(f"http://127.0.0.1:{port}/{path}", timeout=30)
        assert response.status_code == 200 and len(response.content) == BIG


def test_a_client_that_leaves_mid_body_never_reaches_the_app():
    called = []

    async def app(scope, receive, send):
        called.append(scope["path"])

    messages = [{"type": "http.request", "body": b'{"email": ', "more_body": True}, {"type": "http.disconnect"}]

    async def receive():
        return messages.pop(0)

    async def send(message):
        raise AssertionError(f"nothing is sent to a client that left: {message}")

    scope = {"type": "http", "path": "/api/v1/auth/login", "method": "POST",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")]}
    asyncio.run(BodySizeLimitMiddleware(app)(scope, receive, send))
    assert called == []
