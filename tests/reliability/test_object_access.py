"""Object-level authorization, walked from the OpenAPI schema: every operation whose path takes
an id answers 404 JSON on every verb to another user's id and to a missing id, so an id the
caller may not see is indistinguishable from one that does not exist. A new endpoint joins the
walk by being in the schema; one whose id kind the walk cannot fill fails it."""

import re
import uuid

import pytest

from accounts.models import DeviceToken
from tests.conftest import token_client
from tests.factories import UserFactory
from tests.storybook.test_books import book_payload, create
from tests.voices.conftest import make_voice

pytestmark = pytest.mark.django_db

METHODS = ("get", "put", "patch", "post", "delete")


@pytest.fixture
def owned():
    """One of everything, owned by `owner`: the ids a stranger will try."""
    owner, friend = UserFactory(), UserFactory()
    client = token_client(owner)
    narrator = make_voice(None, name="Narrator", provider="local", provider_voice_id="local-en-us-f", language="en")
    voice = make_voice(owner, name="Mom", provider="local", provider_voice_id="local-en-us-m", language="en")
    share = client.post(f"/api/v1/tts/voices/{voice.pk}/shares", {"email": friend.email}, format="json")
    assert share.status_code == 201, share.content
    book = create(client, book_payload(narrator)).json()
    job = client.post("/api/v1/tts/generate", {"voice_id": str(voice.pk), "text": "Good night, little fox."},
                      format="json")
    assert job.status_code == 202, job.content
    return {
        "voice_id": str(voice.pk), "share_id": str(share.json()["id"]), "book_id": book["id"],
        "page_id": book["pages"][0]["id"], "line_id": book["pages"][0]["lines"][0]["id"],
        "job_id": job.json()["id"], "token_id": str(DeviceToken.objects.filter(user=owner).first().pk),
    }


def operations(client) -> list[tuple[str, str, dict]]:
    """(method, path template, operation) for every operation with a path parameter."""
    schema = client.get("/api/schema/?format=json").json()
    return [(method, path, op) for path, item in schema["paths"].items() if "{" in path
            for method, op in item.items() if method in METHODS]


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


def call(client, method: str, path: str, op: dict):
    content = (op.get("requestBody") or {}).get("content", {})
    if "application/json" in content or not content:
        return getattr(client, method)(path, {}, format="json")
    return getattr(client, method)(path, {}, format="multipart")


def test_every_id_taking_operation_hides_other_users_objects_and_missing_ones(owned):
    stranger = token_client(UserFactory())
    walked = operations(stranger)
    assert len(walked) >= 25  # the walk really covers the id-taking API
    params = {name for _, path, _ in walked for name in re.findall(r"\{(\w+)\}", path)}
    assert params <= set(owned), f"the walk cannot fill {params - set(owned)}"
    missing = {name: str(uuid.uuid4()) for name in params}
    failures = []
    for method, template, op in walked:
        for label, ids in (("another user's", owned), ("a missing", missing)):
            response = call(stranger, method, fill(template, ids), op)
            body = response.json() if response["Content-Type"].startswith("application/json") else {}
            if response.status_code != 404 or not body.get("error", {}).get("code", "").endswith("not_found"):
                failures.append(f"{method.upper()} {template} with {label} id: {response.status_code} "
                                f"{response.content[:120]!r}")
    assert not failures, "\n".join(failures)


def test_writes_to_a_shared_voice_the_caller_may_see_are_403(owned):
    default = make_voice(None, name="House voice")
    stranger = token_client(UserFactory())
    assert stranger.get(f"/api/v1/tts/voices/{default.pk}").status_code == 200  # visible...
    for method in ("patch", "delete"):
        response = getattr(stranger, method)(f"/api/v1/tts/voices/{default.pk}", {"name": "x"}, format="json")
        assert (response.status_code, response.json()["error"]["code"]) == (403, "not_owner")  # ...not writable
