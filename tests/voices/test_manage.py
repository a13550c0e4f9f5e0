"""Update, delete, moderation, default voices and account deletion."""

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django_redis import get_redis_connection

from accounts import services as account_services
from accounts.models import User
from tests.conftest import token_client
from tests.voices.conftest import clone, make_voice
from tts.models import LocalProviderVoice
from voices.models import Voice
from voices.services import PENDING_SET, voice_moderate

pytestmark = pytest.mark.django_db


def names_seen_by(client) -> set[str]:
    return {item["name"] for item in client.get("/api/v1/tts/voices").json()["results"]}


def test_rename_and_describe(auth_client, user):
    voice = make_voice(user, name="Old")
    response = auth_client.patch(f"/api/v1/tts/voices/{voice.pk}", {"name": "New", "description": "calm"})
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["description"]) == ("New", "calm")
    assert response.json()["moderation_status"] == "not_required"


def test_read_only_fields_cannot_be_written(auth_client, user):
    voice = make_voice(user, name="Mine")
    response = auth_client.patch(f"/api/v1/tts/voices/{voice.pk}",
                                 {"status": "completed", "moderation_status": "approved", "provider": "x"})
    assert response.status_code == 200
    voice.refresh_from_db()
    assert (voice.moderation_status, voice.provider) == ("not_required", "local")


def test_default_visibility_cannot_be_chosen(auth_client, user):
    voice = make_voice(user)
    response = auth_client.patch(f"/api/v1/tts/voices/{voice.pk}", {"visibility": "default"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"


def test_public_voice_is_moderated_before_others_see_it(auth_client, user, other_user, django_capture_on_commit_callbacks):
    other = token_client(other_user)
    admin = User.objects.create_superuser(email="mod@example.com", password="x-long-password-1")
    voice = make_voice(user, name="Story voice")

    response = auth_client.patch(f"/api/v1/tts/voices/{voice.pk}", {"visibility": "public"})
    assert response.json()["moderation_status"] == "pending"
    assert "Story voice" not in names_seen_by(other)
    assert other.get(f"/api/v1/tts/voices/{voice.pk}").status_code == 404

    with django_capture_on_commit_callbacks(execute=True):
        assert voice_moderate(moderator=admin, voice_ids=[voice.pk], decision="approved", note="lovely") == 1
    assert "Story voice" in names_seen_by(other)
    assert other.get(f"/api/v1/tts/voices/{voice.pk}").json()["is_mine"] is False

    # Renaming a public voice sends it back to moderation: hidden from others again.
    with django_capture_on_commit_callbacks(execute=True):
        auth_client.patch(f"/api/v1/tts/voices/{voice.pk}", {"name": "Renamed"})
    assert names_seen_by(other) & {"Story voice", "Renamed"} == set()

    # Back to private: no moderation needed, still hidden from others.
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.patch(f"/api/v1/tts/voices/{voice.pk}", {"visibility": "private"})
    assert response.json()["moderation_status"] == "not_required"


def test_blocked_voice_cannot_be_made_public(auth_client, user):
    admin = User.objects.create_superuser(email="mod@example.com", password="x-long-password-1")
    voice = make_voice(user, visibility="public", moderation_status="pending")
    voice_moderate(moderator=admin, voice_ids=[voice.pk], decision="blocked")
    auth_client.patch(f"/api/v1/tts/voices/{voice.pk}", {"visibility": "private"})
    response = auth_client.patch(f"/api/v1/tts/voices/{voice.pk}", {"visibility": "public"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"


def test_admin_moderation_actions(client, user):
    admin = User.objects.create_superuser(email="mod@example.com", password="x-long-password-1")
    client.force_login(admin)
    voice = make_voice(user, visibility="public", moderation_status="pending")
    assert client.get("/admin/voices/voice/").status_code == 200
    response = client.post("/admin/voices/voice/", {"action": "approve", "_selected_action": [str(voice.pk)]})
    assert response.status_code == 302
    voice.refresh_from_db()
    assert (voice.moderation_status, voice.moderated_by) == ("approved", admin)


def test_moderation_pushes_voice_moderated_to_the_owner(user, monkeypatch, django_capture_on_commit_callbacks):
    from voices import services

    sent = []
    monkeypatch.setattr(services, "notify_user", lambda *args: sent.append(args))
    admin = User.objects.create_superuser(email="mod@example.com", password="x-long-password-1")
    voice = make_voice(user, visibility="public", moderation_status="pending")
    with django_capture_on_commit_callbacks(execute=True):
        voice_moderate(moderator=admin, voice_ids=[voice.pk], decision="rejected", note="not a voice")
    assert sent == [(user.pk, "voice.moderated",
                     {"voice_id": str(voice.pk), "decision": "rejected", "moderation_status": "rejected",
                      "note": "not a voice"})]


def test_delete_removes_provider_voice_files_and_hides_the_row(auth_client, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        voice_id = clone(auth_client).json()["id"]
    voice = Voice.objects.get(pk=voice_id)
    path = voice.samples.get().file.name
    with django_capture_on_commit_callbacks(execute=True):
        assert auth_client.delete(f"/api/v1/tts/voices/{voice_id}").status_code == 204
    voice.refresh_from_db()
    assert voice.deleted_at is not None  # the row stays for job history
    assert LocalProviderVoice.objects.get(provider_voice_id=voice.provider_voice_id).deleted_at is not None
    assert not default_storage.exists(path)
    assert not get_redis_connection("default").sismember(PENDING_SET, voice_id)
    assert auth_client.get(f"/api/v1/tts/voices/{voice_id}").status_code == 404
    assert auth_client.delete(f"/api/v1/tts/voices/{voice_id}").status_code == 404
    assert voice_id not in {i["id"] for i in auth_client.get("/api/v1/tts/voices").json()["results"]}


def test_delete_of_a_voice_already_gone_at_the_provider(auth_client, elevenlabs_settings):
    voice_id = clone(auth_client).json()["id"]
    elevenlabs_settings.remove_voice(Voice.objects.get(pk=voice_id).provider_voice_id)
    assert auth_client.delete(f"/api/v1/tts/voices/{voice_id}").status_code == 204
    assert Voice.objects.get(pk=voice_id).deleted_at is not None


def test_delete_during_a_provider_outage_keeps_the_voice(auth_client, elevenlabs_settings):
    voice_id = clone(auth_client).json()["id"]
    elevenlabs_settings.fail("delete_voice", 503, times=1)
    response = auth_client.delete(f"/api/v1/tts/voices/{voice_id}")
    assert response.status_code == 503 and response.json()["error"]["code"] == "provider_unavailable"
    assert Voice.objects.get(pk=voice_id).deleted_at is None
    assert auth_client.delete(f"/api/v1/tts/voices/{voice_id}").status_code == 204


def test_user_me_counts_voices(auth_client, user):
    make_voice(user)
    make_voice(user, deleted_at="2026-01-01T00:00:00Z")
    make_voice(None)
    assert auth_client.get("/api/v1/user/me").json()["usage"]["voices"] == 1
    clone(auth_client)
    assert auth_client.get("/api/v1/user/me").json()["usage"]["voices"] == 2


def test_account_deletion_retries_until_the_provider_deleted_every_voice(
        auth_client, user, elevenlabs_settings, django_capture_on_commit_callbacks):
    ids = [clone(auth_client, name=f"v{i}").json()["id"] for i in range(3)]
    provider_ids = set(Voice.objects.filter(pk__in=ids).values_list("provider_voice_id", flat=True))
    elevenlabs_settings.fail("delete_voice", 503, times=2)

    with django_capture_on_commit_callbacks(execute=True):  # Q_SYNC: the first cleanup runs inline
        assert auth_client.delete("/api/v1/user/me").status_code == 202
    assert User.objects.filter(pk=user.pk, is_active=False).exists()  # provider refused: not yet

    attempt = 2
    while not account_services.account_cleanup(user_id=user.pk, attempt=attempt):
        attempt += 1
        assert attempt < 10
    assert not User.objects.filter(pk=user.pk).exists()
    assert not Voice.objects.filter(pk__in=ids).exists()
    assert not provider_ids & set(elevenlabs_settings.voice_ids())
    assert elevenlabs_settings.count("delete_voice") == 3 + 2  # three voices, two refusals


def test_default_voices_command_is_idempotent_and_tracks_removals(auth_client, elevenlabs_settings,
                                                                 django_capture_on_commit_callbacks):
    call_command("sync_default_voices")
    defaults = Voice.objects.filter(visibility="default", deleted_at__isnull=True)
    local_count = defaults.filter(provider="local").count()
    eleven_count = defaults.filter(provider="elevenlabs").count()
    assert local_count >= 4 and eleven_count >= 1
    assert {"local", "elevenlabs"} <= set(defaults.values_list("provider", flat=True))
    call_command("sync_default_voices")
    assert Voice.objects.filter(visibility="default").count() == local_count + eleven_count

    listed = {i["id"] for i in auth_client.get("/api/v1/tts/voices").json()["results"]}
    assert {str(v) for v in defaults.values_list("pk", flat=True)} <= listed

    gone = defaults.filter(provider="elevenlabs").first()
    elevenlabs_settings.remove_voice(gone.provider_voice_id)
    with django_capture_on_commit_callbacks(execute=True):  # the shared list's version bumps on commit
        call_command("sync_default_voices")
    gone.refresh_from_db()
    assert gone.deleted_at is not None
    assert str(gone.pk) not in {i["id"] for i in auth_client.get("/api/v1/tts/voices").json()["results"]}


def test_default_voices_sync_survives_a_provider_outage(elevenlabs_settings):
    elevenlabs_settings.fail("search_voices", 503, times=None)
    elevenlabs_settings.fail("list_voices", 503, times=None)
    call_command("sync_default_voices")
    assert Voice.objects.filter(provider="local", visibility="default").exists()
    assert not Voice.objects.filter(provider="elevenlabs").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_default_voice_syncs_do_not_collide(monkeypatch):
    """Two hosts starting at once (or start plus the daily schedule) both insert the defaults."""
    import threading

    from django.db import connection

    from tts.providers.local import LocalProvider
    from voices.services import voice_defaults_sync

    original = LocalProvider.list_default_voices
    barrier = threading.Barrier(2)

    def in_step(self):
        voices = original(self)
        barrier.wait(10)  # both runs have read the provider and found no rows yet
        return voices

    monkeypatch.setattr(LocalProvider, "list_default_voices", in_step)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            voice_defaults_sync(provider_name="local")
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    expected = {v.provider_voice_id for v in original(LocalProvider())}
    rows = list(Voice.objects.filter(provider="local", visibility=Voice.Visibility.DEFAULT)
                .values_list("provider_voice_id", flat=True))
    assert sorted(rows) == sorted(expected)


def test_a_cleanup_bug_is_an_error_counted_and_stops_in_the_admin(user, settings, caplog, monkeypatch,
                                                                   django_capture_on_commit_callbacks, client):
    from django_q.models import Schedule

    from accounts.models import AccountCleanup

    settings.ACCOUNT_CLEANUP_MAX_ATTEMPTS = 3

    def broken_step(*, user):
        raise RuntimeError("a plain bug")

    monkeypatch.setattr(account_services, "_cleanup_steps", [broken_step])
    with django_capture_on_commit_callbacks(execute=True):  # Q_SYNC: the first attempt runs inline
        account_services.user_deactivate(user=user)
    for attempt in range(2, 6):
        assert account_services.account_cleanup(user_id=user.pk, attempt=attempt) is False

    record = AccountCleanup.objects.get(user=user)
    assert (record.state, record.failures) == ("failed", 3)
    assert "RuntimeError: a plain bug" in record.last_error
    errors = [r for r in caplog.records if r.name == "accounts.services" and r.levelname == "ERROR"]
    assert len(errors) == 3 and all(r.exc_info for r in errors)  # logged with the traceback
    assert Schedule.objects.filter(func="accounts.tasks.account_cleanup").count() == 2  # no retry after the stop

    # The admin lists it; its action restarts it once the cause is fixed.
    admin = User.objects.create_superuser(email="admin@example.com", password="x-long-password-1")
    client.force_login(admin)
    page = client.get("/admin/accounts/accountcleanup/?state__exact=failed")
    assert page.status_code == 200 and user.email in page.content.decode()
    monkeypatch.setattr(account_services, "_cleanup_steps", [])
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/accounts/accountcleanup/", {"action": "retry", "_selected_action": [str(user.pk)]})
    assert not User.objects.filter(pk=user.pk).exists()


def test_a_transient_provider_error_keeps_retrying_without_counting(auth_client, user, elevenlabs_settings, settings,
                                                                    django_capture_on_commit_callbacks):
    from accounts.models import AccountCleanup

    settings.ACCOUNT_CLEANUP_MAX_ATTEMPTS = 2
    clone(auth_client)
    elevenlabs_settings.fail("delete_voice", 503, times=5)
    with django_capture_on_commit_callbacks(execute=True):
        auth_client.delete("/api/v1/user/me")
    for attempt in range(2, 6):
        assert account_services.account_cleanup(user_id=user.pk, attempt=attempt) is False
    record = AccountCleanup.objects.get(user=user)
    assert (record.state, record.failures, record.attempts) == ("retrying", 0, 5)
    assert account_services.account_cleanup(user_id=user.pk, attempt=6) is True
    assert not User.objects.filter(pk=user.pk).exists()
