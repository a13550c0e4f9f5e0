"""Request ids on log lines (web and the task a request queued), JSON lines, and no secrets in logs."""

import json
import logging

import pytest

from ops.logs import RequestIdFilter, request_id_var
from tests.conftest import token_client
from tests.voices.conftest import make_voice

pytestmark = pytest.mark.django_db


def ids_of(caplog, logger: str) -> list[str]:
    return [getattr(r, "request_id", None) for r in caplog.records if r.name == logger]


@pytest.fixture(autouse=True)
def request_ids_on_caplog(caplog):
    # caplog's handler is not the console handler: give it the same filter.
    caplog.handler.addFilter(RequestIdFilter())
    caplog.set_level(logging.DEBUG)
    yield
    caplog.handler.removeFilter(caplog.handler.filters[-1])


def test_a_client_request_id_is_echoed_and_on_the_access_line(client, caplog):
    response = client.get("/healthz", headers={"X-Request-ID": "app-1234.abc"})
    assert response["X-Request-ID"] == "app-1234.abc"
    assert ids_of(caplog, "storybook.access") == ["app-1234.abc"]
    assert "GET /healthz 200" in caplog.records[-1].getMessage()


def test_a_missing_or_wild_request_id_is_replaced_by_a_fresh_one(client):
    made = client.get("/healthz")["X-Request-ID"]
    assert len(made) == 32 and made != client.get("/healthz")["X-Request-ID"]
    wild = client.get("/healthz", headers={"X-Request-ID": "x" * 65})["X-Request-ID"]
    assert wild != "x" * 65 and len(wild) == 32
    assert client.get("/healthz", headers={"X-Request-ID": "a\nb"})["X-Request-ID"] != "a\nb"
    trailing = client.get("/healthz", headers={"X-Request-ID": "abc\n"})
    assert trailing.status_code == 200 and len(trailing["X-Request-ID"]) == 32


def test_json_lines_of_django_request_keep_no_signed_token_or_query():
    from django.conf import settings
    from django.test import RequestFactory
    from pythonjsonlogger.json import JsonFormatter

    from config.logging import RedactSignedLinks

    request = RequestFactory().get("/exports/SECRET-TOKEN-123", {"sig": "abc"})
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Not Found: %s",
                               ("/exports/SECRET-TOKEN-123",), None)
    record.request, record.status_code = request, 404
    RedactSignedLinks().filter(record)
    RequestIdFilter().filter(record)
    spec = settings.LOGGING["formatters"]["json"]
    line = JsonFormatter(spec["fmt"], rename_fields=spec["rename_fields"]).format(record)
    assert "SECRET-TOKEN-123" not in line and "sig=abc" not in line
    assert json.loads(line)["request"] == "GET /exports/<redacted>"


def test_the_task_a_request_queued_logs_with_its_id(user, caplog, django_capture_on_commit_callbacks):
    # Q_SYNC: the task runs inline, through django-q2's worker code and its signals.
    voice = make_voice(None, name="English", provider="local", provider_voice_id="local-en-us-f", language="en")
    api = token_client(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/tts/generate", {"voice_id": str(voice.pk), "text": "The secret story of Pip."},
                            format="json", headers={"X-Request-ID": "req-from-app-77"})
    assert response.status_code == 202, response.content
    runner_ids = ids_of(caplog, "tts.runner")
    assert runner_ids and set(runner_ids) == {"req-from-app-77"}
    assert "succeeded" in " ".join(r.getMessage() for r in caplog.records if r.name == "tts.runner")
    # After the inline task the request's own lines still carry the id.
    assert ids_of(caplog, "storybook.access") == ["req-from-app-77"]
    assert "secret story" not in caplog.text  # the text of a speech job is never logged
    assert request_id_var.get() in (None, "req-from-app-77")


def test_a_login_leaves_no_password_or_token_in_any_log(client, caplog):
    password = "correct-horse-battery-staple-9"
    signup = client.post("/api/v1/auth/signup", {"email": "logs@example.com", "password": password,
                                                 "device_name": "phone"}, content_type="application/json")
    assert signup.status_code == 201, signup.content
    login = client.post("/api/v1/auth/login", {"email": "logs@example.com", "password": password,
                                               "device_name": "tablet"}, content_type="application/json")
    bad = client.post("/api/v1/auth/login", {"email": "logs@example.com", "password": password + "x",
                                             "device_name": "tablet"}, content_type="application/json")
    assert login.status_code == 200 and bad.status_code in (400, 401)
    token = login.json()["token"]
    text = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert password not in text and token not in text and signup.json()["token"] not in text
    assert ids_of(caplog, "storybook.access")  # the requests were logged, without their bodies


def test_json_lines_carry_the_request_id():
    from pythonjsonlogger.json import JsonFormatter

    from django.conf import settings

    spec = dict(settings.LOGGING["formatters"]["json"])
    formatter = JsonFormatter(spec["fmt"], rename_fields=spec["rename_fields"])
    record = logging.LogRecord("tts.runner", logging.INFO, __file__, 1, "speech job %s done", ("j1",), None)
    token = request_id_var.set("rid-9")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = json.loads(formatter.format(record))
    assert (line["level"], line["logger"], line["request_id"], line["message"]) == (
        "INFO", "tts.runner", "rid-9", "speech job j1 done")
    assert "time" in line
