"""Every error of the design's table that exists so far: JSON shape, code and status."""

import asyncio
import json

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from config.asgi import application
from config.api.middleware import BodySizeLimitMiddleware

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


@pytest.mark.smoke
def test_missing_credentials_is_401_not_403():
    response = APIClient().get("/api/v1/user/me")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Token")


def test_bad_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_error(client.get("/api/v1/user/me"), 401, "not_authenticated")


def test_validation_error_lists_fields():
    error = assert_error(APIClient().post("/api/v1/auth/login", {"email": "not-an-email"}), 400, "validation_error")
    assert {"email", "password", "device_name"} <= set(error["details"]["fields"])


def test_malformed_json_is_400():
    response = APIClient().post("/api/v1/auth/login", data='{"email": ', content_type="application/json")
    assert_error(response, 400, "malformed_json")


def test_unknown_api_path_is_json_404(auth_client):
    assert_error(auth_client.get("/api/v1/no-such-thing"), 404, "not_found")
    assert_error(APIClient().get("/api/v2/anything"), 404, "not_found")


@override_settings(DEBUG=True)
def test_unknown_api_path_is_json_even_in_debug(auth_client):
    assert_error(auth_client.get("/api/v1/no-such-thing"), 404, "not_found")


def test_unknown_id_is_404(auth_client):
    assert_error(auth_client.delete("/api/v1/auth/tokens/7b0c3c52-8f7c-4b43-9d53-8f1f0f3f0f3f"), 404, "token_not_found")


def test_wrong_method_is_405(auth_client):
    assert_error(auth_client.delete("/api/v1/auth/tokens"), 405, "method_not_allowed")


def test_unsupported_media_type_is_415(auth_client):
    response = auth_client.patch("/api/v1/user/me", data="<x/>", content_type="application/xml")
    assert_error(response, 415, "unsupported_media_type")


def test_csrf_failure_for_session_clients_is_403(user):
    from tests.factories import PASSWORD

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert_error(client.patch("/api/v1/user/me", {"display_name": "x"}), 403, "permission_denied")


def test_throttled_is_429_with_retry_after(monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    # DRF binds the rates to the class at import time.
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, "auth": "2/min"})
    client = APIClient()
    for _ in range(2):
        client.post("/api/v1/auth/password/reset", {"email": "a@example.com"})
    response = client.post("/api/v1/auth/password/reset", {"email": "a@example.com"})
    error = assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert error["details"]["retry_after"] > 0


def test_json_body_over_the_memory_limit_is_413(auth_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = auth_client.patch("/api/v1/user/me", {"display_name": "x" * 5000}, format="json")
    assert_error(response, 413, "request_too_large")


def test_too_many_files_is_413(auth_client, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = {f"f{i}": SimpleUploadedFile(f"{i}.wav", b"x") for i in range(3)}
    # The clone endpoint takes multipart (JSON endpoints answer 415 to it before parsing).
    response = auth_client.post("/api/v1/tts/voices/clone", {"name": "x", **files}, format="multipart")
    assert_error(response, 413, "request_too_large")


def test_json_endpoints_take_json_only(auth_client):
    response = auth_client.patch("/api/v1/user/me", {"display_name": "x"}, format="multipart")
    assert_error(response, 415, "unsupported_media_type")


CHUNKED = (b"transfer-encoding", b"chunked")


class _Recorder:
    def __init__(self, chunks: list[bytes]):
        self.chunks = list(chunks)
        self.receive_calls = 0
        self.sent: list[dict] = []

    async def receive(self):
        self.receive_calls += 1
        if self.chunks:
            body = self.chunks.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(self.chunks)}
        await asyncio.sleep(3600)  # the client stays connected until the test ends

    async def send(self, message):
        self.sent.append(message)


def _scope(headers: list[tuple[bytes, bytes]]) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/v1/auth/login", "raw_path": b"/api/v1/auth/login", "query_string": b"",
        "root_path": "", "headers": [(b"host", b"testserver"), *headers], "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }


def test_declared_20mb_body_gets_413_without_being_read():
    recorder = _Recorder([b"x" * 65536] * 320)  # 20 MiB offered
    scope = _scope([(b"content-type", b"application/json"), (b"content-length", str(20 * 1024 * 1024).encode())])
    asyncio.run(application(scope, recorder.receive, recorder.send))
    assert recorder.receive_calls == 0  # not a byte read
    assert recorder.sent[0]["status"] == 413
    body = recorder.sent[1]["body"]
    assert b'"request_too_large"' in body


def test_chunked_body_is_cut_off_at_the_limit(settings):
    settings.MAX_REQUEST_BYTES = 100_000
    chunks = [b"x" * 10_000] * 50  # 500 kB without Content-Length

    async def app(scope, receive, send):  # stands in for Django: reads the whole body first
        while (await receive())["type"] == "http.request":
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"should not be sent"})

    recorder = _Recorder(chunks)
    asyncio.run(BodySizeLimitMiddleware(app)(_scope([CHUNKED]), recorder.receive, recorder.send))
    assert recorder.receive_calls == 11  # stopped just past the limit
    assert [m.get("status") for m in recorder.sent if m["type"] == "http.response.start"] == [413]
    assert b"should not be sent" not in b"".join(m.get("body", b"") for m in recorder.sent)


def test_body_within_the_limit_reaches_django():
    recorder = _Recorder([b'{"email": "x"}'])
    scope = _scope([(b"content-type", b"application/json"), (b"content-length", b"14")])
    asyncio.run(application(scope, recorder.receive, recorder.send))
    assert recorder.sent[0]["status"] == 400  # Django answered: validation, not a size error


def test_chunked_body_within_the_limit_reaches_django_whole():
    # No Content-Length: the guard reads and counts it, then declares its length to Django's
    # WSGI handler (which reads exactly CONTENT_LENGTH bytes and would otherwise see nothing).
    recorder = _Recorder([b'{"email": ', b'"someone@example.com"}'])
    asyncio.run(application(_scope([(b"content-type", b"application/json"), CHUNKED]), recorder.receive,
                            recorder.send))
    assert recorder.sent[0]["status"] == 400
    fields = json.loads(b"".join(m.get("body", b"") for m in recorder.sent[1:]))["error"]["details"]["fields"]
    assert "email" not in fields and "password" in fields  # the email arrived, the password was never sent
