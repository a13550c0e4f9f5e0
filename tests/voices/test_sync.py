"""Voice status sync: the state machine, batching, the idle tick, Redis down, reconcile, fast
first checks, events, and two runs at once (Postgres + Redis, the real SDK against the emulator)."""

import sys
import threading
import time
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async as sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_redis import get_redis_connection

from accounts.services import device_token_create
from tests.factories import UserFactory
from tests.fakes import elevenlabs as el
from tests.live import ROOT, service_env
from tests.voices.conftest import make_voice
from tts.models import SpeechJob
from voices import sync
from voices.models import Voice
from voices.services import PENDING_SET, voice_moderate

# Transactional: the sync's work after commit (events, the pending set, previews) must run.
pytestmark = pytest.mark.django_db(transaction=True)

MODEL = el.DEFAULT_MODEL_ID


@pytest.fixture(autouse=True)
def previews_stay_queued(monkeypatch):
    """Preview jobs are queued, not rendered inline (the queue runs in-process in tests)."""
    from tts import services

    monkeypatch.setattr(services, "speech_jobs_wake", lambda **kwargs: None)


def pending(owner, emulator=None, *, provider_voice_id=None, deadline_in=timedelta(minutes=30), add=True, **fields):
    """A processing voice of `owner` in the pending set; at the emulator unless an id is given."""
    if provider_voice_id is None:
        provider_voice_id = emulator.add_voice("Mom")
    voice = make_voice(owner, provider="elevenlabs", provider_voice_id=provider_voice_id,
                       status=Voice.Status.PROCESSING, sync_deadline=timezone.now() + deadline_in, **fields)
    if add:
        get_redis_connection("default").sadd(PENDING_SET, str(voice.pk))
    return voice


def in_set() -> set[str]:
    return {m.decode() for m in get_redis_connection("default").smembers(PENDING_SET)}


def state(voice) -> tuple[str, str]:
    voice.refresh_from_db()
    return voice.status, voice.failure_reason


# --- the state machine, row by row -------------------------------------------------------------

@pytest.mark.smoke
def test_a_clone_needing_no_verification_completes_with_a_preview_and_leaves_the_set(user, elevenlabs_settings):
    voice = pending(user, elevenlabs_settings)
    result = sync.voices_sync_pending()
    assert result.completed == [voice.pk]
    voice.refresh_from_db()
    assert voice.status == "completed" and voice.completed_at is not None and voice.last_checked_at is not None
    assert in_set() == set()
    preview = SpeechJob.objects.get(voice_id=voice.pk)
    assert preview.purpose == "preview" and preview.quota_month is None


@pytest.mark.parametrize(("requires", "verified", "expected"), [
    (True, False, "processing"), (True, True, "completed"), (False, False, "completed")])
def test_verification_gates_completion(user, elevenlabs_settings, requires, verified, expected):
    voice = pending(user, elevenlabs_settings)
    elevenlabs_settings.set_verification(voice.provider_voice_id, requires_verification=requires, is_verified=verified)
    sync.voices_sync_pending()
    assert state(voice)[0] == expected
    assert (str(voice.pk) in in_set()) == (expected == "processing")


@pytest.mark.parametrize(("fine_tuning", "expected"), [
    ("fine_tuned", ("completed", "")), ("fine_tuning", ("processing", "")), ("not_started", ("processing", "")),
    ("failed", ("failed", "fine-tuning for eleven_multilingual_v2 failed"))])
def test_a_professional_voice_follows_fine_tuning_for_our_model(user, elevenlabs_settings, fine_tuning, expected):
    provider_voice_id = elevenlabs_settings.add_voice("Pro", category="professional",
                                                      fine_tuning_state={MODEL: fine_tuning})
    voice = pending(user, provider_voice_id=provider_voice_id, category="professional")
    sync.voices_sync_pending()
    status, reason = state(voice)
    assert status == expected[0] and expected[1] in reason


def test_a_voice_gone_at_the_provider_fails_as_removed_after_a_confirming_get(user, elevenlabs_settings):
    voice = pending(user, provider_voice_id="gone-voice-000000000")
    result = sync.voices_sync_pending()
    assert result.failed == [voice.pk]
    assert elevenlabs_settings.count(el.GET_VOICE) == 1
    assert state(voice) == ("failed", "The voice was removed from the provider's account.")


def test_a_voice_missing_from_the_batch_but_found_by_get_is_not_removed(user, elevenlabs_settings):
    voice = pending(user, elevenlabs_settings)
    elevenlabs_settings.fail(el.SEARCH_VOICES, 200, body={"voices": [], "has_more": False, "total_count": 0,
                                                          "next_page_token": None})
    sync.voices_sync_pending()
    assert elevenlabs_settings.count(el.GET_VOICE) == 1
    assert state(voice)[0] == "completed"


def test_past_its_deadline_a_voice_still_processing_fails_with_timeout(user, elevenlabs_settings):
    voice = pending(user, elevenlabs_settings, deadline_in=timedelta(seconds=-1))
    elevenlabs_settings.set_verification(voice.provider_voice_id, requires_verification=True, is_verified=False)
    result = sync.voices_sync_pending()
    assert result.failed == [voice.pk]
    assert state(voice) == ("failed", "The provider did not finish the voice in time.")


def test_past_its_deadline_a_voice_the_provider_finished_still_completes(user, elevenlabs_settings):
    voice = pending(user, elevenlabs_settings, deadline_in=timedelta(seconds=-1))
    sync.voices_sync_pending()
    assert state(voice)[0] == "completed"


def test_voices_of_an_unconfigured_provider_are_skipped_never_failed(user, settings):
    configured_key = settings.ELEVENLABS_API_KEY or "sk_configured_later"
    settings.ELEVENLABS_API_KEY = ""
    voice = pending(user, provider_voice_id="elsewhere-0000000000", deadline_in=timedelta(seconds=-1))
    assert (sync.voices_check(voices=[voice]).skipped, sync.voices_sync_pending().failed) == (1, [])
    assert state(voice)[0] == "processing"
    assert in_set() == set()  # no tick keeps asking for a voice no provider here can answer for
    settings.ELEVENLABS_API_KEY = configured_key
    assert sync.voices_pending_reconcile() == 1 and in_set() == {str(voice.pk)}


def test_a_provider_outage_changes_nothing(user, elevenlabs_settings):
    voice = pending(user, elevenlabs_settings, deadline_in=timedelta(seconds=-1))
    elevenlabs_settings.fail("*", 503, times=None)
    result = sync.voices_sync_pending()
    assert result.provider_errors == 1 and result.failed == []
    assert state(voice)[0] == "processing" and str(voice.pk) in in_set()


@pytest.mark.smoke
def test_an_offline_clone_completes_once_its_processing_time_is_over(auth_client, user, settings):
    from tests.voices.conftest import clone

    settings.LOCAL_CLONE_PROCESSING_SECONDS = 0.5
    voice_id = clone(auth_client).json()["id"]
    assert sync.voices_sync_pending().checked == 1
    assert auth_client.get(f"/api/v1/tts/voices/{voice_id}").json()["status"] == "processing"
    time.sleep(0.6)
    assert sync.voices_sync_pending().completed == [Voice.objects.get(pk=voice_id).pk]
    assert auth_client.get(f"/api/v1/tts/voices/{voice_id}").json()["status"] == "completed"  # the cache saw it


def test_250_pending_voices_cost_three_batch_calls(user, elevenlabs_settings):
    owners = [UserFactory() for _ in range(50)]
    voices = [pending(owners[i % 50], elevenlabs_settings) for i in range(250)]
    result = sync.voices_sync_pending()
    assert elevenlabs_settings.count(el.SEARCH_VOICES) == 3
    assert elevenlabs_settings.count(el.GET_VOICE) == 0
    assert len(result.completed) == 250 == Voice.objects.filter(pk__in=[v.pk for v in voices], status="completed").count()


def test_a_failed_voice_stays_failed_with_its_reason_on_a_recheck(user, elevenlabs_settings):
    voice = make_voice(user, provider="elevenlabs", provider_voice_id="gone-voice-222222222",
                       status=Voice.Status.FAILED, failure_reason="The provider did not finish the voice in time.")
    result = sync.voices_check(voices=[voice])
    assert (result.checked, result.failed, elevenlabs_settings.count()) == (0, [], 0)
    assert state(voice) == ("failed", "The provider did not finish the voice in time.")


def test_voices_of_a_deactivated_account_get_no_preview_and_no_event(user, elevenlabs_settings, monkeypatch):
    events = []
    monkeypatch.setattr(sync, "notify_user", lambda *args: events.append(args))
    voice = pending(user, elevenlabs_settings)
    type(user).objects.filter(pk=user.pk).update(is_active=False)  # account deletion under way
    sync.voices_sync_pending()
    assert state(voice)[0] == "processing" and events == [] and not SpeechJob.objects.exists()
    assert str(voice.pk) not in in_set()  # cleanup deletes it; reconcile skips it too
    assert sync.voices_pending_reconcile() == 0


def test_a_failing_preview_costs_no_voice_its_event(user, elevenlabs_settings, monkeypatch):
    events = []
    monkeypatch.setattr(sync, "notify_user", lambda owner, kind, data: events.append((kind, data["id"])))

    def broken_preview(*, voice):
        raise RuntimeError("the queue is down")

    monkeypatch.setattr(sync, "voice_preview_render", broken_preview)
    voices = [pending(user, elevenlabs_settings) for _ in range(2)]
    result = sync.voices_sync_pending()
    assert sorted(result.completed) == sorted(v.pk for v in voices)
    assert sorted(events) == sorted(("voice.completed", str(v.pk)) for v in voices)
    assert in_set() == set()


def test_a_shared_voice_that_fails_leaves_everyone_elses_list(user, other_user, elevenlabs_settings):
    from tests.conftest import token_client

    voice = make_voice(user, provider="elevenlabs", provider_voice_id="gone-voice-333333333",
                       visibility=Voice.Visibility.PUBLIC, moderation_status=Voice.Moderation.APPROVED)
    other = token_client(other_user)
    assert str(voice.pk) in {v["id"] for v in other.get("/api/v1/tts/voices").json()["results"]}
    sync.voices_reconcile_removed()
    assert str(voice.pk) not in {v["id"] for v in other.get("/api/v1/tts/voices").json()["results"]}
    assert other.get(f"/api/v1/tts/voices/{voice.pk}").status_code == 404


# --- the pending set: idle, Redis down, stale members, reconcile -----------------------------------

@pytest.mark.smoke
def test_the_idle_tick_costs_no_query_and_no_provider_call(elevenlabs_settings):
    with CaptureQueriesContext(connection) as queries:
        result = sync.voices_sync_pending()
    assert (len(queries), elevenlabs_settings.count(), result.checked) == (0, 0, 0)


def test_with_redis_unreachable_the_tick_finds_pending_voices_in_the_database(user, elevenlabs_settings, settings):
    voice = pending(user, elevenlabs_settings, add=False)
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    result = sync.voices_sync_pending()
    assert result.completed == [voice.pk]


def test_members_that_are_no_longer_processing_leave_the_set(user, elevenlabs_settings):
    done = make_voice(user, status=Voice.Status.COMPLETED)
    get_redis_connection("default").sadd(PENDING_SET, str(done.pk), "not-a-uuid")
    with CaptureQueriesContext(connection) as queries:
        sync.voices_sync_pending()
    assert len(queries) == 1 and elevenlabs_settings.count() == 0
    assert in_set() == set()


def test_after_redis_is_flushed_reconcile_recovers_the_set(user, elevenlabs_settings):
    voices = [pending(user, elevenlabs_settings) for _ in range(3)]
    make_voice(user, status=Voice.Status.COMPLETED)
    get_redis_connection("default").flushdb()
    assert sync.voices_pending_reconcile() == 3
    assert in_set() == {str(v.pk) for v in voices}
    assert sync.voices_pending_reconcile() == 0  # idempotent


def test_reconcile_with_redis_unreachable_reports_nothing_added_instead_of_failing(user, settings):
    from django.core.management import call_command

    make_voice(user, status=Voice.Status.PROCESSING)
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    assert sync.voices_pending_reconcile() == 0
    call_command("reconcile_pending_voices")  # `make run` starts even so


def test_schedules_exist_once_on_the_main_cluster():
    from django.core.management import call_command
    from django_q.models import Schedule

    call_command("migrate", "voices", "0002", verbosity=0)
    call_command("migrate", "voices", verbosity=0)
    rows = {s.name: (s.func, s.cluster, s.schedule_type, s.minutes)
            for s in Schedule.objects.filter(name__in=["sync-voice-status", "reconcile-pending-voices",
                                                        "reconcile-removed-voices"])}
    assert rows == {
        "sync-voice-status": ("voices.tasks.sync_pending_voices", None, "I", 1),
        "reconcile-pending-voices": ("voices.tasks.reconcile_pending_voices", None, "I", 10),
        "reconcile-removed-voices": ("voices.tasks.reconcile_removed_voices", None, "D", None),
    }


# --- removed at the provider (the daily walk) -------------------------------------------------------

def test_the_daily_walk_fails_completed_voices_the_provider_no_longer_has(user, elevenlabs_settings, auth_client):
    kept = make_voice(user, provider="elevenlabs", provider_voice_id=elevenlabs_settings.add_voice("Kept"))
    removed = make_voice(user, provider="elevenlabs", provider_voice_id=elevenlabs_settings.add_voice("Removed"))
    elevenlabs_settings.remove_voice(removed.provider_voice_id)  # deleted on the provider's website
    assert sync.voices_reconcile_removed() == {"elevenlabs": 1, "local": 0}
    assert state(kept)[0] == "completed"
    assert state(removed) == ("failed", "The voice was removed from the provider's account.")
    response = auth_client.post("/api/v1/tts/generate", {"voice_id": str(removed.pk), "text": "Hello."}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "voice_not_ready"


def test_a_provider_outage_during_the_walk_changes_nothing(user, elevenlabs_settings):
    removed = make_voice(user, provider="elevenlabs", provider_voice_id="gone-voice-111111111")
    elevenlabs_settings.fail(el.GET_VOICE, 503, times=None)
    assert sync.voices_reconcile_removed()["elevenlabs"] == 0
    assert state(removed)[0] == "completed"


def test_a_walk_out_of_time_queues_its_continuation_from_where_it_stopped(user, elevenlabs_settings, monkeypatch):
    from django_q import tasks as q_tasks

    for _ in range(3):
        make_voice(user, provider="elevenlabs", provider_voice_id=elevenlabs_settings.add_voice("V"))
    queued = []
    monkeypatch.setattr(q_tasks, "async_task", lambda func, *args, **kw: queued.append((func, args)))
    monkeypatch.setattr(sync, "BATCH_SIZE", 2)
    clock = iter([0.0, 0.0, 100.0])  # the deadline, one batch in time, then out of time
    monkeypatch.setattr(sync.time, "monotonic", lambda: next(clock, 100.0))
    monkeypatch.setattr(sync, "_task_deadline", lambda: 50.0)
    sync.voices_reconcile_removed()
    first_two = sorted(Voice.objects.filter(provider="elevenlabs").values_list("pk", flat=True))[1]
    assert queued == [("voices.tasks.reconcile_removed_voices", ("elevenlabs", str(first_two)))]
    monkeypatch.setattr(sync.time, "monotonic", lambda: 0.0)
    before = elevenlabs_settings.count(el.SEARCH_VOICES)
    sync.voices_reconcile_removed(provider_name="elevenlabs", after=first_two)
    assert elevenlabs_settings.count(el.SEARCH_VOICES) == before + 1  # only the voice after the cursor


def test_the_walk_goes_in_batches_of_a_hundred(user, elevenlabs_settings):
    for _ in range(150):
        make_voice(user, provider="elevenlabs", provider_voice_id=elevenlabs_settings.add_voice("V"))
    sync.voices_reconcile_removed()
    assert elevenlabs_settings.count(el.SEARCH_VOICES) == 2


# --- admin -------------------------------------------------------------------------------------------

def test_admin_rechecks_now_and_refuses_to_approve_an_unfinished_voice(user, elevenlabs_settings, client):
    from accounts.models import User

    voice = pending(user, elevenlabs_settings, visibility=Voice.Visibility.PUBLIC,
                    moderation_status=Voice.Moderation.PENDING)
    admin = User.objects.create_superuser(email="ops@example.com", password="x-long-password-1")
    client.force_login(admin)
    page = client.post("/admin/voices/voice/", {"action": "approve", "_selected_action": [str(voice.pk)]},
                       follow=True).content.decode()
    assert "Only completed voices can be approved" in page
    assert Voice.objects.get(pk=voice.pk).moderation_status == "pending"
    with pytest.raises(Exception, match="Only completed voices"):
        voice_moderate(moderator=admin, voice_ids=[voice.pk], decision="approved")

    page = client.post("/admin/voices/voice/", {"action": "recheck_now", "_selected_action": [str(voice.pk)]},
                       follow=True).content.decode()
    assert "1 voice(s) checked: 1 completed" in page
    client.post("/admin/voices/voice/", {"action": "approve", "_selected_action": [str(voice.pk)]})
    assert Voice.objects.get(pk=voice.pk).moderation_status == "approved"


# --- fast first checks --------------------------------------------------------------------------------

@pytest.mark.smoke
def test_the_fast_checker_completes_a_fresh_clone_within_a_couple_of_seconds(user, elevenlabs_settings, settings):
    settings.VOICE_FAST_CHECK_WINDOW_SECONDS = 60
    settings.VOICE_FAST_CHECK_NAP_SECONDS = 0.1
    voice = pending(user, elevenlabs_settings)
    elevenlabs_settings.set_verification(voice.provider_voice_id, requires_verification=True, is_verified=False)
    threading.Timer(0.5, elevenlabs_settings.set_verification, args=(voice.provider_voice_id,),
                    kwargs={"requires_verification": True, "is_verified": True}).start()
    started = time.monotonic()
    checks = sync.voices_check_fresh()
    voice.refresh_from_db()
    assert voice.status == "completed"
    # Checked at about 0 s (processing) and 1 s (done), then it stopped: no fresh voice was left.
    assert checks == 2 and time.monotonic() - started < 5
    assert not get_redis_connection("default").exists(sync.FAST_LOCK)


def test_only_one_fast_checker_runs_and_none_waits_for_a_voice_that_is_not_fresh(user, elevenlabs_settings, settings):
    settings.VOICE_FAST_CHECK_WINDOW_SECONDS = 60
    old = pending(user, elevenlabs_settings)
    Voice.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    elevenlabs_settings.set_verification(old.provider_voice_id, requires_verification=True, is_verified=False)
    with CaptureQueriesContext(connection) as queries:
        assert sync.voices_check_fresh() == 0  # nothing fresh: it returns at once
    assert elevenlabs_settings.count() == 0 and len(queries) == 2
    get_redis_connection("default").set(sync.FAST_LOCK, "another-checker", px=5000)
    assert sync.voices_check_fresh() == 0  # the running one covers every fresh voice


def test_the_fast_checker_hands_over_to_a_new_task_after_its_run_time(user, elevenlabs_settings, settings,
                                                                       monkeypatch):
    from django_q import tasks as q_tasks

    settings.VOICE_FAST_CHECK_WINDOW_SECONDS = 60
    settings.VOICE_FAST_CHECK_RUN_SECONDS = 0.3
    voice = pending(user, elevenlabs_settings)
    elevenlabs_settings.set_verification(voice.provider_voice_id, requires_verification=True, is_verified=False)
    queued = []
    monkeypatch.setattr(q_tasks, "async_task", lambda func, *a, **kw: queued.append(func))
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    started = time.monotonic()
    assert sync.voices_check_fresh() == 1
    assert time.monotonic() - started < 2  # it let its worker go
    assert queued == ["voices.tasks.check_fresh_voices"]  # and the still-fresh voice is not dropped
    assert state(voice)[0] == "processing"


def test_a_clone_queues_a_fast_check_on_the_main_cluster(user, settings, monkeypatch, auth_client):
    from django_q import tasks as q_tasks

    from tests.voices.conftest import clone

    settings.VOICE_FAST_CHECK_WINDOW_SECONDS = 60
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}  # as in production: queued, not inline
    queued = []
    monkeypatch.setattr(q_tasks, "async_task", lambda func, *a, **kw: queued.append((func, kw.get("cluster"))))
    assert clone(auth_client).status_code == 202
    assert ("voices.tasks.check_fresh_voices", None) in queued


def test_inline_queues_never_run_the_fast_checker_inside_the_clone_request(user, settings, monkeypatch, auth_client):
    from django_q import tasks as q_tasks

    from tests.voices.conftest import clone

    settings.VOICE_FAST_CHECK_WINDOW_SECONDS = 60
    queued = []
    monkeypatch.setattr(q_tasks, "async_task", lambda func, *a, **kw: queued.append(func))
    assert clone(auth_client).status_code == 202  # Q_SYNC is on in tests
    assert "voices.tasks.check_fresh_voices" not in queued


# --- events ---------------------------------------------------------------------------------------------

async def test_the_owner_hears_voice_completed_and_nobody_else_does(elevenlabs_settings):
    @sync_to_async
    def setup():
        owner, other = UserFactory(), UserFactory()
        keys = [device_token_create(user=u, device_name="phone")[1] for u in (owner, other)]
        return owner, pending(owner, elevenlabs_settings), keys

    owner, voice, (owner_key, other_key) = await setup()
    owner_ws = WebsocketCommunicator(_app(), "/ws/events/", subprotocols=["token", owner_key])
    other_ws = WebsocketCommunicator(_app(), "/ws/events/", subprotocols=["token", other_key])
    for ws in (owner_ws, other_ws):
        assert (await ws.connect())[0]
        assert (await ws.receive_json_from(timeout=3))["type"] == "hello"
    try:
        await sync_to_async(sync.voices_sync_pending)()
        event = await owner_ws.receive_json_from(timeout=5)
        assert event["type"] == "voice.completed"
        assert event["data"]["id"] == str(voice.pk) and event["data"]["status"] == "completed"
        assert event["data"]["is_mine"] is True and event["data"]["completed_at"]
        assert await other_ws.receive_nothing(timeout=0.5)
        assert await owner_ws.receive_nothing(timeout=0.3)  # one event, once
    finally:
        await owner_ws.disconnect()
        await other_ws.disconnect()


def _app():
    from config.asgi import application

    return application


SYNC_ONCE = """
import django
django.setup()
from voices.sync import voices_sync_pending
r = voices_sync_pending()
print(len(r.completed))
"""


@pytest.mark.slow
async def test_two_concurrent_runs_in_two_processes_send_one_event_per_voice(elevenlabs_settings):
    import asyncio

    @sync_to_async
    def setup():
        owner = UserFactory()
        key = device_token_create(user=owner, device_name="phone")[1]
        voices = [pending(owner, elevenlabs_settings) for _ in range(20)]
        elevenlabs_settings.set_latency(el.SEARCH_VOICES, 0.3)  # both runs in flight at once
        return voices, key

    voices, key = await setup()
    ws = WebsocketCommunicator(_app(), "/ws/events/", subprotocols=["token", key])
    assert (await ws.connect())[0]
    await ws.receive_json_from(timeout=3)
    env = service_env(ELEVENLABS_API_KEY=elevenlabs_settings.api_key, ELEVENLABS_BASE_URL=elevenlabs_settings.base_url)
    try:
        runs = [await asyncio.create_subprocess_exec(sys.executable, "-c", SYNC_ONCE, cwd=ROOT, env=env,
                                                     stdout=asyncio.subprocess.PIPE) for _ in range(2)]
        outputs = [int((await run.communicate())[0].decode().strip().splitlines()[-1]) for run in runs]
        assert sum(outputs) == 20  # each voice changed by exactly one of the two
        assert elevenlabs_settings.count(el.SEARCH_VOICES) == 2  # and both really ran
        events = []
        while not await ws.receive_nothing(timeout=1.0):
            events.append(await ws.receive_json_from(timeout=1))
        completed = [e["data"]["id"] for e in events if e["type"] == "voice.completed"]
        assert sorted(completed) == sorted(str(v.pk) for v in voices)
        count = await sync_to_async(SpeechJob.objects.filter(purpose="preview").count)()
        assert count == 20
    finally:
        await ws.disconnect()

