"""Cookies that arrive in several Cookie headers (as HTTP/2 clients and some proxies send them)
still sign the browser in."""

import asyncio

import pytest
from django.test import Client

from config.asgi import application
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def get(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"accept", b"application/json"), *headers],
             "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
    asyncio.run(application(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_a_session_cookie_in_its_own_cookie_header_is_read():
    user = UserFactory()
    client = Client()
    client.force_login(user)
    session = client.cookies["sessionid"].value
    status, body = get("/api/v1/user/me", [(b"cookie", b"theme=dark"), (b"cookie", f"sessionid={session}".encode())])
    assert status == 200 and user.email.encode() in body
