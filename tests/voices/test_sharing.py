"""Family sharing: a parent shares a completed voice with another account, which may speak with
it (clips and storybooks) but not change it; a revoke hides it at once; nobody else sees it; an
unknown email looks the same as a known one (Postgres + Redis)."""

import pytest

from tests.conftest import token_client
from tests.factories import UserFactory
from tests.voices.conftest import make_voice
from voices.models import VoiceShare

pytestmark = pytest.mark.django_db


@pytest.fixture
def family(user):
    grandma = UserFactory(email="grandma@example.com")
    voice = make_voice(user, name="Mom", language="en", provider_voice_id="local-en-us-f")
    return {"owner": token_client(user), "grandma": token_client(grandma), "grandma_user": grandma,
            "stranger": token_client(UserFactory()), "voice": voice}


def listed(api) -> dict[str, dict]:
    return {item["id"]: item for item in api.get("/api/v1/tts/voices").json()["results"]}


def share(api, voice, email):
    return api.post(f"/api/v1/tts/voices/{voice.pk}/shares", {"email": email}, format="json")


def test_a_shared_voice_is_listed_and_usable_for_the_other_account_but_not_writable(family):
    voice, grandma = family["voice"], family["grandma"]
    assert str(voice.pk) not in listed(grandma)  # primes grandma's cached list
    response = share(family["owner"], voice, "Grandma@Example.com")
    assert response.status_code == 201 and set(response.json()) == {"id", "email", "created_at"}
    item = listed(grandma)[str(voice.pk)]  # the share invalidated her cached list
    assert item["shared_with_me"] is True and item["is_mine"] is False
    assert grandma.get(f"/api/v1/tts/voices/{voice.pk}").json()["shared_with_me"] is True
    assert listed(family["owner"])[str(voice.pk)]["shared_with_me"] is False

    spoken = grandma.post("/api/v1/tts/generate", {"voice_id": str(voice.pk), "text": "Goodnight, little one."},
                          format="json")
    assert spoken.status_code == 202
    book = grandma.post("/api/v1/storybook/create", {
        "title": "Moon", "language": "en", "narrator_voice_id": str(voice.pk),
        "pages": [{"lines": [{"text": "The moon is up."}]}]}, format="json")
    assert book.status_code == 202

    for method in ("patch", "delete"):
        refused = getattr(grandma, method)(f"/api/v1/tts/voices/{voice.pk}", {"name": "Mine now"}, format="json")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_owner"
    assert grandma.get(f"/api/v1/tts/voices/{voice.pk}/shares").status_code == 404  # who else: the owner's business
    assert share(grandma, voice, "someone@example.com").status_code == 403

    stranger = family["stranger"]
    assert str(voice.pk) not in listed(stranger)
    assert stranger.get(f"/api/v1/tts/voices/{voice.pk}").status_code == 404
    assert stranger.post("/api/v1/tts/generate", {"voice_id": str(voice.pk), "text": "Hi."},
                         format="json").status_code == 404


def test_a_revoke_hides_the_voice_at_once_and_the_audio_already_made_stays(family, django_capture_on_commit_callbacks):
    voice, grandma = family["voice"], family["grandma"]
    share_id = share(family["owner"], voice, "grandma@example.com").json()["id"]
    with django_capture_on_commit_callbacks(execute=True):  # rendered inline
        job = grandma.post("/api/v1/tts/generate", {"voice_id": str(voice.pk), "text": "Sleep tight."},
                           format="json").json()
    detail = grandma.get(f"/api/v1/tts/jobs/{job['id']}").json()
    audio_url = detail["audio_url"]
    assert str(voice.pk) in listed(grandma)
    assert family["owner"].get(f"/api/v1/tts/voices/{voice.pk}/shares").json()[0]["id"] == share_id

    assert family["owner"].delete(f"/api/v1/tts/voices/{voice.pk}/shares/{'9' * 30}").status_code == 404
    assert family["owner"].delete(f"/api/v1/tts/voices/{str(voice.pk).upper()}/shares/{share_id}").status_code == 204
    assert grandma.get(f"/api/v1/tts/voices/{voice.pk}").status_code == 404
    assert str(voice.pk) not in listed(grandma)
    assert grandma.post("/api/v1/tts/generate", {"voice_id": str(voice.pk), "text": "Again."},
                        format="json").status_code == 404
    from rest_framework.test import APIClient

    assert audio_url and APIClient().get(audio_url).status_code == 200  # her clip still plays


def test_an_unknown_email_answers_like_a_known_one_and_grants_nothing(family):
    known = share(family["owner"], family["voice"], "grandma@example.com")
    unknown = share(family["owner"], family["voice"], "nobody-here@example.com")
    assert known.status_code == unknown.status_code == 201
    assert set(known.json()) == set(unknown.json())
    assert [s["email"] for s in family["owner"].get(f"/api/v1/tts/voices/{family['voice'].pk}/shares").json()] == [
        "grandma@example.com", "nobody-here@example.com"]
    late = token_client(UserFactory(email="nobody-here@example.com"))  # signs up afterwards
    assert str(family["voice"].pk) not in listed(late)
    assert share(family["owner"], family["voice"], "nobody-here@example.com").status_code == 200  # shared again
    assert str(family["voice"].pk) in listed(late)


def test_only_a_completed_unblocked_voice_can_be_shared(user, family):
    owner = family["owner"]
    processing = make_voice(user, name="Still cloning", status="processing")
    assert share(owner, processing, "grandma@example.com").json()["error"]["code"] == "voice_not_ready"
    blocked = make_voice(user, name="Blocked", moderation_status="blocked")
    assert share(owner, blocked, "grandma@example.com").json()["error"]["code"] == "voice_blocked"
    assert share(owner, family["voice"], user.email).status_code == 400  # oneself


def test_shares_end_with_either_account(user, family):
    voice, grandma_user = family["voice"], family["grandma_user"]
    share(family["owner"], voice, "grandma@example.com")
    assert str(voice.pk) in listed(family["grandma"])
    user.is_active = False  # the owner's account is being deleted
    user.save(update_fields=["is_active"])
    assert str(voice.pk) not in listed(family["grandma"])
    user.is_active = True
    user.save(update_fields=["is_active"])
    grandma_user.delete()
    assert not VoiceShare.objects.exists()
