"""Moderation as a job a non-superuser can do: the Moderators group and its command, the admin's
list, change page and actions, their effect on everyone's lists, the history, the owner's event,
and blocking's effect on queued jobs (Postgres + Redis)."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from accounts.models import User
from tests.conftest import token_client
from tests.factories import UserFactory
from tests.voices.conftest import clone, make_voice
from tts.models import QuotaMonth, SpeechJob
from voices.models import Voice, VoiceModeration

pytestmark = pytest.mark.django_db


@pytest.fixture
def moderator():
    user = UserFactory(email="moderator@example.com")
    call_command("add_moderator", user.email)
    user.refresh_from_db()
    return user


@pytest.fixture
def mod_client(client, moderator):
    client.force_login(moderator)
    return client


def names_seen_by(api) -> set[str]:
    return {item["name"] for item in api.get("/api/v1/tts/voices").json()["results"]}


def act(client, action: str, *voices, **extra):
    return client.post("/admin/voices/voice/", {"action": action, "_selected_action": [str(v.pk) for v in voices],
                                                **extra})


def test_the_moderators_group_holds_voice_permissions_only_and_the_command_grants_and_removes_it(moderator):
    group = Group.objects.get(name="Moderators")
    assert sorted(p.codename for p in group.permissions.all()) == [
        "change_voice", "view_voice", "view_voicemoderation", "view_voicesample"]
    assert moderator.is_staff and not moderator.is_superuser and moderator.groups.filter(pk=group.pk).exists()
    call_command("add_moderator", moderator.email, "--remove")
    moderator.refresh_from_db()
    assert not moderator.is_staff and not moderator.groups.exists()
    with pytest.raises(CommandError):
        call_command("add_moderator", "nobody@example.com")


def test_a_moderator_reaches_voices_and_nothing_else_and_a_plain_user_no_admin_at_all(mod_client, user, client):
    voice = make_voice(user, visibility="public", moderation_status="pending")
    assert mod_client.get("/admin/voices/voice/").status_code == 200
    assert mod_client.get(f"/admin/voices/voice/{voice.pk}/change/").status_code == 200
    for page in ("/admin/accounts/user/", "/admin/accounts/devicetoken/", "/admin/tts/speechjob/",
                 "/admin/storybook/book/", "/admin/auth/group/", f"/admin/accounts/user/{user.pk}/change/"):
        assert mod_client.get(page).status_code == 403, page
    assert mod_client.post(f"/admin/voices/voice/{voice.pk}/delete/").status_code == 403
    plain = UserFactory()
    client.force_login(plain)
    response = client.get("/admin/voices/voice/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_list_puts_pending_review_first_and_filters_and_searches(mod_client, user):
    make_voice(user, name="Older pending", visibility="public", moderation_status="pending")
    make_voice(user, name="Newest private")
    page = mod_client.get("/admin/voices/voice/").content.decode()
    assert page.index("Older pending") < page.index("Newest private")
    filtered = mod_client.get("/admin/voices/voice/?moderation_status__exact=pending&deleted=no").content.decode()
    assert "Older pending" in filtered and "Newest private" not in filtered
    assert "Newest private" in mod_client.get(f"/admin/voices/voice/?q={user.email}").content.decode()


def test_the_change_page_plays_samples_and_preview_and_shows_jobs_and_history(mod_client, auth_client, user,
                                                                            moderator,
                                                                            django_capture_on_commit_callbacks):
    from voices.services import voice_preview_render

    with django_capture_on_commit_callbacks(execute=True):
        voice_id = clone(auth_client).json()["id"]
    Voice.objects.filter(pk=voice_id).update(status="completed")  # as the sync would
    voice = Voice.objects.get(pk=voice_id)
    with django_capture_on_commit_callbacks(execute=True):
        voice_preview_render(voice=voice)  # rendered inline (Q_SYNC)
    Voice.objects.filter(pk=voice.pk).update(visibility="public", moderation_status="pending")
    act(mod_client, "block", voice)
    page = mod_client.get(f"/admin/voices/voice/{voice.pk}/change/").content.decode()
    assert page.count("<audio controls") >= 2  # a sample and the preview
    assert "/samples/" in page and "/audio/" in page
    assert "preview" in page and "moderator@example.com" in page and "blocked" in page
    sample_src = page.split('src="/samples/')[1].split('"')[0]
    from rest_framework.test import APIClient

    played = APIClient().get(f"/samples/{sample_src}")
    assert played.status_code == 200 and b"".join(played.streaming_content)[:4] == b"RIFF"


def test_each_action_changes_what_others_see_records_history_and_tells_the_owner_only(
        mod_client, moderator, user, monkeypatch, django_capture_on_commit_callbacks):
    from voices import services

    sent = []
    monkeypatch.setattr(services, "notify_user", lambda *args: sent.append(args))
    owner_api, other_api = token_client(user), token_client(UserFactory())
    voice = make_voice(user, name="Grandma", visibility="public", moderation_status="pending")

    with django_capture_on_commit_callbacks(execute=True):
        assert act(mod_client, "approve", voice).status_code == 302  # one click, no intermediate page
    assert "Grandma" in names_seen_by(other_api)

    form = act(mod_client, "reject", voice)  # asks for a note first
    assert form.status_code == 200 and b'name="note"' in form.content
    assert Voice.objects.get(pk=voice.pk).moderation_status == "approved"
    with django_capture_on_commit_callbacks(execute=True):
        act(mod_client, "reject", voice, apply="Reject", note="Background music, please record again.")
    assert "Grandma" not in names_seen_by(other_api)
    detail = owner_api.get(f"/api/v1/tts/voices/{voice.pk}").json()
    assert detail["moderation_status"] == "rejected"
    assert detail["moderation_note"] == "Background music, please record again."

    with django_capture_on_commit_callbacks(execute=True):
        act(mod_client, "block", voice)
    assert "Grandma" in names_seen_by(owner_api) and other_api.get(f"/api/v1/tts/voices/{voice.pk}").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        act(mod_client, "unblock", voice)
    assert Voice.objects.get(pk=voice.pk).moderation_status == "pending"  # public: reviewed again

    history = list(VoiceModeration.objects.filter(voice=voice).order_by("created_at"))
    assert [(h.decision, h.moderator_id) for h in history] == [
        ("approved", moderator.pk), ("rejected", moderator.pk), ("blocked", moderator.pk), ("unblocked", moderator.pk)]
    assert history[1].note == "Background music, please record again."
    assert [(owner, event, data["decision"]) for owner, event, data in sent] == [
        (user.pk, "voice.moderated", "approved"), (user.pk, "voice.moderated", "rejected"),
        (user.pk, "voice.moderated", "blocked"), (user.pk, "voice.moderated", "unblocked")]


def test_an_unfinished_voice_cannot_be_approved(mod_client, user):
    voice = make_voice(user, visibility="public", moderation_status="pending", status="processing")
    act(mod_client, "approve", voice)
    assert Voice.objects.get(pk=voice.pk).moderation_status == "pending"
    assert not VoiceModeration.objects.exists()


def test_blocking_fails_the_voices_queued_jobs_with_voice_blocked(mod_client, user, auth_client):
    voice = make_voice(user, name="Mine")
    for text in ("One little fox.", "Two little foxes."):
        assert auth_client.post("/api/v1/tts/generate", {"voice_id": str(voice.pk), "text": text},
                                format="json").status_code == 202  # no commit here: the jobs stay queued
    assert QuotaMonth.objects.get(user=user).reserved > 0
    act(mod_client, "block", voice)
    jobs = list(SpeechJob.objects.filter(voice=voice))
    assert [(j.status, j.error_code) for j in jobs] == [("failed", "voice_blocked")] * 2
    assert QuotaMonth.objects.get(user=user).reserved == 0  # their characters went back
    refused = auth_client.post("/api/v1/tts/generate", {"voice_id": str(voice.pk), "text": "Three."}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "voice_blocked"


def test_deleting_in_the_admin_goes_through_the_voice_delete(client, auth_client, user,
                                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        voice_id = clone(auth_client).json()["id"]
    path = Voice.objects.get(pk=voice_id).samples.get().file.name
    admin = User.objects.create_superuser(email="root@example.com", password="x-long-password-1")
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/voices/voice/{voice_id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    voice = Voice.objects.get(pk=voice_id)  # the row stays for job history, marked deleted
    from django.core.files.storage import default_storage

    assert voice.deleted_at is not None and not default_storage.exists(path)
    assert auth_client.get(f"/api/v1/tts/voices/{voice_id}").status_code == 404
    default = make_voice(None, name="Rachel")
    assert client.get(f"/admin/voices/voice/{default.pk}/delete/").status_code == 403
