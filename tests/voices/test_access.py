"""Who sees and who may change which voice: 404 for what the caller may not see (every verb),
403 not_owner for writes to a shared voice the caller can see."""

import pytest

from tests.voices.conftest import make_voice
from voices.models import Voice

pytestmark = pytest.mark.django_db


@pytest.fixture
def voices(user, other_user):
    return {
        "own_private": make_voice(user, name="own private"),
        "own_processing": make_voice(user, name="own processing", status=Voice.Status.PROCESSING),
        "own_failed": make_voice(user, name="own failed", status=Voice.Status.FAILED),
        "own_public_pending": make_voice(user, name="own pending", visibility="public", moderation_status="pending"),
        "default": make_voice(None, name="default"),
        "public_approved": make_voice(other_user, name="theirs approved", visibility="public",
                                      moderation_status="approved"),
        "public_pending": make_voice(other_user, name="theirs pending", visibility="public",
                                     moderation_status="pending"),
        "public_rejected": make_voice(other_user, name="theirs rejected", visibility="public",
                                      moderation_status="rejected"),
        "other_private": make_voice(other_user, name="theirs private"),
        "own_deleted": make_voice(user, name="own deleted", deleted_at="2026-01-01T00:00:00Z"),
        "default_deleted": make_voice(None, name="gone default", deleted_at="2026-01-01T00:00:00Z"),
    }


VISIBLE = {"own_private", "own_processing", "own_failed", "own_public_pending", "default", "public_approved"}


@pytest.mark.smoke
def test_list_shows_own_in_any_status_plus_default_and_approved_public(auth_client, voices):
    body = auth_client.get("/api/v1/tts/voices").json()
    names = {item["name"] for item in body["results"]}
    assert names == {voices[k].name for k in VISIBLE}
    assert body["count"] == len(VISIBLE)
    mine = {item["name"]: item["is_mine"] for item in body["results"]}
    assert mine["own private"] and mine["own pending"]
    assert not mine["default"] and not mine["theirs approved"]


def test_list_orders_own_first_then_defaults_then_public(auth_client, voices):
    names = [item["name"] for item in auth_client.get("/api/v1/tts/voices").json()["results"]]
    assert names.index("default") > max(names.index(n) for n in ("own private", "own pending", "own failed"))
    assert names.index("theirs approved") > names.index("default")


@pytest.mark.parametrize("key", sorted(VISIBLE))
def test_visible_voice_can_be_read(auth_client, voices, key):
    response = auth_client.get(f"/api/v1/tts/voices/{voices[key].pk}")
    assert response.status_code == 200
    assert response.json()["name"] == voices[key].name


@pytest.mark.parametrize("key", ["public_pending", "public_rejected", "other_private", "own_deleted", "default_deleted"])
@pytest.mark.parametrize("verb", ["get", "patch", "delete"])
def test_invisible_voice_is_404_on_every_verb(auth_client, voices, key, verb):
    kwargs = {"data": {"name": "hijack"}} if verb == "patch" else {}
    response = getattr(auth_client, verb)(f"/api/v1/tts/voices/{voices[key].pk}", **kwargs)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "voice_not_found"
    voices[key].refresh_from_db()
    assert voices[key].name != "hijack"


def test_unknown_voice_id_is_404(auth_client):
    response = auth_client.get("/api/v1/tts/voices/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404 and response.json()["error"]["code"] == "voice_not_found"


@pytest.mark.parametrize("key", ["default", "public_approved"])
@pytest.mark.parametrize("verb", ["patch", "delete"])
def test_writes_to_a_visible_shared_voice_are_403_not_owner(auth_client, voices, key, verb):
    kwargs = {"data": {"name": "hijack"}} if verb == "patch" else {}
    response = getattr(auth_client, verb)(f"/api/v1/tts/voices/{voices[key].pk}", **kwargs)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_owner"
    voices[key].refresh_from_db()
    assert voices[key].name != "hijack" and voices[key].deleted_at is None


def test_filters(auth_client, voices):
    def names(query: str) -> set[str]:
        response = auth_client.get(f"/api/v1/tts/voices?{query}")
        assert response.status_code == 200, response.content
        return {item["name"] for item in response.json()["results"]}

    assert names("mine=true") == {voices[k].name for k in VISIBLE if k.startswith("own")}
    assert names("mine=false") == {"default", "theirs approved"}
    assert names("status=processing") == {"own processing"}
    assert names("category=premade") == {"default"}
    Voice.objects.filter(pk=voices["default"].pk).update(language="ko")
    assert names("language=ko") == {"default"}


def test_bad_filter_value_is_400(auth_client, voices):
    response = auth_client.get("/api/v1/tts/voices?status=sleeping")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "status" in response.json()["error"]["details"]["fields"]


def test_page_size_is_capped(auth_client, user):
    for i in range(105):
        make_voice(user, name=f"v{i}", provider_voice_id=f"bulk-{i}")
    body = auth_client.get("/api/v1/tts/voices?page_size=100").json()
    assert body["count"] == 105 and len(body["results"]) == 100
    too_big = auth_client.get("/api/v1/tts/voices?page_size=1000")
    assert too_big.status_code == 400 and "page_size" in too_big.json()["error"]["details"]["fields"]


@pytest.mark.parametrize("query", ["page=0", "page=abc", "page_size=0", "page_size=-3", "page=1&page=2", "page_size=2.5"])
def test_bad_paging_parameters_are_400(auth_client, voices, query):
    response = auth_client.get(f"/api/v1/tts/voices?{query}", HTTP_IF_NONE_MATCH="*")  # checked before any 304
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_a_page_past_the_end_is_404(auth_client, voices):
    response = auth_client.get("/api/v1/tts/voices?page=999")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_pagination(auth_client, voices):
    first = auth_client.get("/api/v1/tts/voices?page_size=4").json()
    second = auth_client.get(first["next"]).json()
    assert first["count"] == len(VISIBLE) and len(first["results"]) == 4
    assert len(second["results"]) == len(VISIBLE) - 4
    assert not {i["id"] for i in first["results"]} & {i["id"] for i in second["results"]}


def test_voice_of_an_unconfigured_provider_is_listed_unavailable_and_never_touched(auth_client, user, settings,
                                                                                 elevenlabs_emulator):
    settings.ELEVENLABS_API_KEY = ""  # elevenlabs not configured here
    voice = make_voice(user, name="cloud voice", provider="elevenlabs", provider_voice_id="el-123")
    items = {i["name"]: i for i in auth_client.get("/api/v1/tts/voices").json()["results"]}
    assert items["cloud voice"]["available"] is False
    response = auth_client.delete(f"/api/v1/tts/voices/{voice.pk}")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "provider_unavailable"
    voice.refresh_from_db()
    assert voice.deleted_at is None
    assert elevenlabs_emulator.count() == 0


def test_a_deleted_accounts_public_voices_disappear_at_once(auth_client, other_user, monkeypatch,
                                                            django_capture_on_commit_callbacks):
    from accounts import services as account_services

    make_voice(other_user, name="theirs approved", visibility="public", moderation_status="approved")
    assert "theirs approved" in {i["name"] for i in auth_client.get("/api/v1/tts/voices").json()["results"]}
    cleanups = []  # the cleanup task would delete the rows; hold it back to see the deactivation alone
    monkeypatch.setattr(account_services, "account_cleanup_queue", lambda **kw: cleanups.append(kw))
    with django_capture_on_commit_callbacks(execute=True):
        account_services.user_deactivate(user=other_user)
    assert cleanups == [{"user_id": other_user.pk}]
    listed = auth_client.get("/api/v1/tts/voices").json()["results"]  # through the cache
    assert "theirs approved" not in {i["name"] for i in listed}


@pytest.mark.parametrize("query", ["page=" + "9" * 5000, "page_size=" + "1" * 5000])
def test_a_huge_page_number_is_a_400_not_a_500(auth_client, voices, query):
    response = auth_client.get(f"/api/v1/tts/voices?{query}")
    assert response.status_code == 400
