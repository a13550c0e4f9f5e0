"""Odd input that used to be a 500: each is a JSON error of the design's table now."""

import uuid

import pytest
from rest_framework.test import APIClient

from tests.factories import PASSWORD
from tests.voices.conftest import clone, sample

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert body["error"]["code"] == code
    return body["error"]


LONG_NAME = "Recording 2024-05-01 at 10.32.15 - mom reading story.wav"


@pytest.mark.parametrize("name", [
    LONG_NAME,
    "🎙️" * 80 + ".wav",
    "x" * 300 + ".wav",
    "nul\x00byte and\ttab.wav",
], ids=["long", "emoji", "300-chars", "control-chars"])
def test_odd_sample_file_names_are_stored_under_ids(auth_client, name):
    from voices.models import VoiceSample

    response = clone(auth_client, samples=[sample(name)])
    assert response.status_code == 202, response.content[:500]
    assert response.json()["name"] == "Mom"
    stored = VoiceSample.objects.get(voice_id=response.json()["id"])
    # The stored path comes from ids; the original name is kept, cleaned and cut to its column.
    assert stored.file.name.startswith("voice-samples/") and len(stored.file.name) <= 100
    assert name.split(".")[0][:20] not in stored.file.name
    assert "\x00" not in stored.original_name
    assert len(stored.original_name) <= 255
    assert stored.original_name[:10] == "".join(c for c in name if c not in "\x00\t")[:10]
    with stored.file.open("rb") as f:
        assert f.read(4) == b"RIFF"


@pytest.mark.parametrize("body", ['{"a":' * 50_000, "[" * 100_000, '{"a":' * 40 + "1" + "}" * 40],
                         ids=["objects", "arrays", "just-past-the-limit"])
@pytest.mark.parametrize("who", ["anonymous", "signed-in"])
def test_deeply_nested_json_is_malformed_json(body, who, auth_client):
    client = auth_client if who == "signed-in" else APIClient()
    path = "/api/v1/user/me" if who == "signed-in" else "/api/v1/auth/login"
    method = client.patch if who == "signed-in" else client.post
    response = method(path, data=body, content_type="application/json")
    assert_error(response, 400, "malformed_json")


def test_ordinary_nesting_still_parses(auth_client):
    response = auth_client.patch("/api/v1/user/me", data='{"display_name": "Mom", "extra": {"a": [[1]]}}',
                                 content_type="application/json")
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/auth/signup", "/api/v1/auth/login", "/api/v1/auth/password/reset"])
def test_an_email_longer_than_254_characters_is_a_validation_error(path):
    email = "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".com"  # valid shape, 313 characters
    response = APIClient().post(path, {"email": email, "password": PASSWORD, "device_name": "x"})
    error = assert_error(response, 400, "validation_error")
    assert "email" in error["details"]["fields"]


def test_an_email_longer_than_254_characters_in_user_me_is_a_validation_error(auth_client, user):
    email = "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".com"
    response = auth_client.patch("/api/v1/user/me", {"email": email, "current_password": PASSWORD})
    assert_error(response, 400, "validation_error")


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unsafe_methods_on_unknown_api_paths_are_404(method, user):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    for client in (APIClient(enforce_csrf_checks=True), browser):
        response = getattr(client, method)("/api/v1/nope", data="{}", content_type="application/json")
        assert_error(response, 404, "not_found")


def test_upper_case_ids_in_paths_match(auth_client, user):
    from tests.voices.conftest import make_voice

    voice = make_voice(owner=user)
    response = auth_client.get(f"/api/v1/tts/voices/{str(voice.pk).upper()}")
    assert response.status_code == 200
    assert response.json()["id"] == str(voice.pk)
    tokens = auth_client.get("/api/v1/auth/tokens").json()
    assert auth_client.delete(f"/api/v1/auth/tokens/{tokens[0]['id'].upper()}").status_code == 204


def test_an_unknown_upper_case_id_is_still_a_json_404(auth_client):
    assert_error(auth_client.get(f"/api/v1/tts/voices/{str(uuid.uuid4()).upper()}"), 404, "voice_not_found")
