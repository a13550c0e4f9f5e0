"""Voice status sync: `processing` -> `completed` / `failed`, from what the provider reports.

Clones have no webhook, so the service asks. One service (`voices_check`) serves every caller:
the fast checker (fresh clones, at about 1, 2, 4, 8 s of age), the minute schedule (every
pending voice), the daily walk over completed voices (voices removed at the provider) and the
admin's "re-check now". Transitions lock the rows first and change only those still in the status
they were read in, so two runs at once never change a voice twice or send two events for it.
"""

import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from uuid import UUID

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_redis import get_redis_connection

from accounts.events import notify_user
from config.api.errors import VoiceNotFound
from tts.providers import PROVIDER_NAMES, VOICE_FAILED, VOICE_READY, ProviderError, get_provider, is_configured

from .cache import invalidate_voices
from .models import Voice
from .services import PENDING_SET, voice_fresh_check_queue, voice_pending_remove, voice_preview_render

logger = logging.getLogger(__name__)

# At most this many ids per batch call (`GET /v2/voices?voice_ids=...`).
BATCH_SIZE = 100
FAST_LOCK = "voices:sync:fast"
REMOVED = object()  # a voice the provider confirmed it no longer has (GET 404)

# Failure reasons: the stable code goes in the event, the sentence in `failure_reason`.
REASON_TIMEOUT = "timeout"
REASON_REMOVED = "voice_removed"
REASON_PROVIDER = "provider_failed"

_RELEASE_IF_OURS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW_IF_OURS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


@dataclass
class CheckResult:
    checked: int = 0
    completed: list[UUID] = field(default_factory=list)
    failed: list[UUID] = field(default_factory=list)
    skipped: int = 0  # unconfigured provider, or the provider did not answer for them
    provider_errors: int = 0

    def add(self, other: "CheckResult") -> None:
        self.checked += other.checked
        self.completed += other.completed
        self.failed += other.failed
        self.skipped += other.skipped
        self.provider_errors += other.provider_errors


def _checkable():
    """Voices the sync may change: not deleted, owned by an active account (a deactivated one is
    being cleaned up: its voices get no preview and no event)."""
    return Voice.objects.filter(deleted_at__isnull=True, owner__isnull=False, owner__is_active=True)


def _processing():
    # Served by the partial index `voice_processing` (status = 'processing').
    return _checkable().filter(status=Voice.Status.PROCESSING)


# --- the state machine -------------------------------------------------------------------------

def _provider_states(provider, voices: Sequence[Voice], result: CheckResult,
                     deadline: float | None) -> dict[str, object]:
    """provider voice id -> ProviderVoice, or REMOVED once a GET confirmed the 404. Ids the
    provider did not answer for (an error), or not asked about before `deadline` (monotonic), are
    absent: they keep their state this time."""
    states: dict[str, object] = {}
    ids = list(dict.fromkeys(v.provider_voice_id for v in voices))

    def out_of_time() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    for offset in range(0, len(ids), BATCH_SIZE):
        if out_of_time():
            break
        batch = ids[offset: offset + BATCH_SIZE]
        try:
            found = provider.get_voices(batch)
        except ProviderError as exc:
            logger.warning("voice sync: batch of %d voices not checked: %s", len(batch), exc)
            result.provider_errors += 1
            continue
        states.update(found)
        # The batch listing can miss a voice (eventual consistency): only a GET 404 means gone.
        for provider_voice_id in batch:
            if provider_voice_id in found or out_of_time():
                continue
            try:
                states[provider_voice_id] = provider.get_voice(provider_voice_id)
            except ProviderError as exc:
                if exc.code == VoiceNotFound.code:
                    states[provider_voice_id] = REMOVED
                else:
                    logger.warning("voice sync: voice %s not confirmed: %s", provider_voice_id, exc)
                    result.provider_errors += 1
    return states


def _next_state(voice: Voice, state, now) -> tuple[str, str, str] | None:
    """(new status, reason code, failure sentence), or None to leave the voice as it is."""
    if state is REMOVED:
        return Voice.Status.FAILED, REASON_REMOVED, "The voice was removed from the provider's account."
    if voice.status != Voice.Status.PROCESSING:
        return None  # a completed voice only changes when the provider no longer has it
    if state.status == VOICE_READY:
        return Voice.Status.COMPLETED, "", ""
    if state.status == VOICE_FAILED:
        return Voice.Status.FAILED, REASON_PROVIDER, state.failure_reason or "The provider could not create the voice."
    if voice.sync_deadline is not None and now >= voice.sync_deadline:
        return Voice.Status.FAILED, REASON_TIMEOUT, "The provider did not finish the voice in time."
    return None


def voices_check(*, voices: Sequence[Voice], deadline: float | None = None) -> CheckResult:
    """Ask each voice's provider (in batches) and apply the state machine. Voices of a provider
    that is not configured here are skipped, never failed; so are those not reached before
    `deadline` (`time.monotonic()`; a task must end within its timeout)."""
    result = CheckResult()
    by_provider: dict[str, list[Voice]] = defaultdict(list)
    for voice in voices:
        if voice.deleted_at is None and voice.owner_id is not None and voice.status != Voice.Status.FAILED:
            by_provider[voice.provider].append(voice)
    for provider_name, group in by_provider.items():
        if not is_configured(provider_name):
            result.skipped += len(group)
            continue
        states = _provider_states(get_provider(provider_name), group, result, deadline)
        now = timezone.now()
        changes = {}
        for voice in group:
            if voice.provider_voice_id not in states:
                result.skipped += 1
                continue
            result.checked += 1
            change = _next_state(voice, states[voice.provider_voice_id], now)
            if change is not None:
                changes[voice.pk] = (voice.status, *change)
        checked = [v.pk for v in group if v.provider_voice_id in states and v.status == Voice.Status.PROCESSING]
        if checked:
            Voice.objects.filter(pk__in=checked).update(last_checked_at=now)
        if changes:
            _apply(changes, now, result)
    return result


def _apply(changes: dict[UUID, tuple[str, str, str, str]], now, result: CheckResult) -> None:
    """Change the rows still in the status they were read in. Rows another run holds locked are
    skipped: that run changes them (and sends their events)."""
    from .serializers import VoiceOutputSerializer

    with transaction.atomic():
        rows = list(_checkable().select_for_update(skip_locked=True, of=("self",)).filter(pk__in=changes))
        changed = []
        for voice in rows:
            read_status, status, reason, sentence = changes[voice.pk]
            if voice.status != read_status or status == read_status:
                continue
            voice.status, voice.failure_reason, voice.updated_at = status, sentence, now
            if status == Voice.Status.COMPLETED:
                voice.completed_at = now
            voice._reason = reason
            changed.append(voice)
        if not changed:
            return
        Voice.objects.bulk_update(changed, ["status", "failure_reason", "completed_at", "updated_at"])
        invalidate_voices(changed)  # what the signals do for a save
        finished = [v.pk for v in changed]
        # Robust: the rows are committed, so one failing callback must not cost the others
        # their events (or the task its result).
        transaction.on_commit(lambda: voice_pending_remove(voice_ids=finished), robust=True)
        for voice in changed:
            # The owner's view of it (`is_mine` compares ids), without loading the owner row.
            item = dict(VoiceOutputSerializer(voice, context={"user": SimpleNamespace(pk=voice.owner_id)}).data)
            if voice.status == Voice.Status.COMPLETED:
                result.completed.append(voice.pk)
                transaction.on_commit(lambda v=voice, d=item: notify_user(v.owner_id, "voice.completed", d), robust=True)
                transaction.on_commit(lambda v=voice: voice_preview_render(voice=v), robust=True)
            else:
                result.failed.append(voice.pk)
                data = {**item, "reason": voice._reason}
                transaction.on_commit(lambda v=voice, d=data: notify_user(v.owner_id, "voice.failed", d), robust=True)


# --- callers -----------------------------------------------------------------------------------

def _pending_ids() -> list[UUID]:
    """The pending set's ids; raises when Redis cannot answer (never read as "nothing")."""
    client = get_redis_connection("default")
    ids, malformed = [], []
    for raw in client.smembers(PENDING_SET):
        try:
            ids.append(UUID(raw.decode() if isinstance(raw, bytes) else raw))
        except ValueError:
            malformed.append(raw)
    if malformed:
        logger.warning("pending set: dropping malformed members %r", malformed)
        client.srem(PENDING_SET, *malformed)
    return ids


def _task_deadline() -> float:
    """A check run by a task stops asking the provider in time to end within its timeout."""
    return time.monotonic() + settings.Q_TIMEOUT / 2


def voices_sync_pending() -> CheckResult:
    """The minute schedule: every voice in the pending set. An empty set costs no SQL and no
    provider call; with Redis unreachable the processing voices come from the database."""
    try:
        ids = _pending_ids()
    except (redis.RedisError, OSError) as exc:
        logger.warning("pending set unreadable (%s): checking processing voices from the database", exc)
        return voices_check(voices=list(_processing()), deadline=_task_deadline())
    if not ids:
        return CheckResult()
    voices = list(_processing().filter(pk__in=ids))
    # The set only holds voices still waiting that this deployment can check: finished, deleted
    # and unconfigured-provider voices leave it (reconcile puts the latter back once configured).
    live = [v for v in voices if is_configured(v.provider)]
    done = set(ids) - {v.pk for v in live}
    if done:
        voice_pending_remove(voice_ids=done)
    return voices_check(voices=live, deadline=_task_deadline()) if live else CheckResult()


def voices_pending_reconcile() -> int:
    """Put every processing voice the pending set lacks back in it (Redis keeps nothing on disk
    here). Returns how many ids were added; 0 with Redis unreachable (the sync then reads the
    database anyway)."""
    ids = [str(pk) for pk, provider in _processing().values_list("pk", "provider") if is_configured(provider)]
    if not ids:
        return 0
    try:
        return int(get_redis_connection("default").sadd(PENDING_SET, *ids))
    except (redis.RedisError, OSError) as exc:
        logger.warning("pending set not reconciled: Redis unreachable (%s)", exc)
        return 0


def voices_reconcile_removed(*, provider_name: str | None = None, after: UUID | None = None) -> dict[str, int]:
    """Daily: walk the completed voices of each configured provider in batches; a voice the
    provider no longer has (confirmed by a GET 404) fails with `voice_removed`. A provider error
    stops that provider's walk and changes nothing more. A walk that runs out of time queues its
    own continuation, from `provider_name` past the voice `after`. Returns voices failed per provider."""
    from django_q.tasks import async_task

    deadline = _task_deadline()
    names = list(PROVIDER_NAMES)
    failed: dict[str, int] = {}
    for name in names[names.index(provider_name):] if provider_name else names:
        if not is_configured(name):
            continue
        failed[name] = 0
        cursor = after if name == provider_name else None
        while True:
            if time.monotonic() >= deadline:
                async_task("voices.tasks.reconcile_removed_voices", name, str(cursor) if cursor else None)
                return failed
            batch = _checkable().filter(provider=name, status=Voice.Status.COMPLETED).order_by("pk")
            batch = list((batch.filter(pk__gt=cursor) if cursor else batch)[:BATCH_SIZE])
            if not batch:
                break
            result = voices_check(voices=batch, deadline=deadline)
            failed[name] += len(result.failed)
            if result.provider_errors:
                logger.warning("removed-voice walk of %s stopped: the provider did not answer", name)
                break
            cursor = batch[-1].pk
    return failed


# --- fast first checks -------------------------------------------------------------------------

def _fresh():
    window = timezone.now() - timedelta(seconds=settings.VOICE_FAST_CHECK_WINDOW_SECONDS)
    return _processing().filter(created_at__gte=window)


def _check_ages() -> list[float]:
    """Ages (seconds) at which a fresh clone is checked: 0, 1, 2, 4, 8, 16, 32 for a 60 s window."""
    ages, age = [0.0], 1.0
    while age < settings.VOICE_FAST_CHECK_WINDOW_SECONDS:
        ages.append(age)
        age *= 2
    return ages


def _next_check(voice: Voice, ages: list[float]):
    """When the voice's next fast check is due (from its age and its last check, so a hand-off
    to a new task keeps the schedule), or None once it had its last one."""
    last = (voice.last_checked_at - voice.created_at).total_seconds() if voice.last_checked_at else -1.0
    for age in ages:
        if age > last:
            return voice.created_at + timedelta(seconds=age)
    return None


class _LockKeeper:
    """Renews a Redis lock in the background while its holder works (a pass can outlast the lock's
    short expiry, which is there for a holder that dies); `lost` says it expired or Redis failed."""

    def __init__(self, client, key: str, token: str, lock_ms: int) -> None:
        self._renew = client.register_script(_RENEW_IF_OURS)
        self._args = ([key], [token, lock_ms])
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(lock_ms / 3000,), daemon=True, name="fast-check-lock")

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                if not self._renew(keys=self._args[0], args=self._args[1]):
                    self.lost.set()
                    return
            except (redis.RedisError, OSError):
                self.lost.set()
                return

    def __enter__(self) -> "_LockKeeper":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def voices_check_fresh() -> int:
    """Check clones younger than the fast window at about 0, 1, 2, 4, 8... s of age. One checker
    at a time covers every fresh voice (a Redis lock); it holds its worker only while a fresh
    voice still has a check ahead, and at most VOICE_FAST_CHECK_RUN_SECONDS, then hands over to
    a new task. Returns the number of check passes it made."""
    client = get_redis_connection("default")
    token = uuid.uuid4().hex
    lock_ms = int(settings.VOICE_FAST_CHECK_LOCK_SECONDS * 1000)
    try:
        if not client.set(FAST_LOCK, token, nx=True, px=lock_ms):
            return 0  # the running checker will see this voice on its next pass
    except (redis.RedisError, OSError) as exc:
        logger.warning("fast voice checks off while Redis is unreachable (%s); the schedule covers them", exc)
        return 0
    ages = _check_ages()
    checks, more = 0, False
    stop_at = time.monotonic() + settings.VOICE_FAST_CHECK_RUN_SECONDS
    tried: dict[UUID, float] = {}  # a voice the provider did not answer for waits a nap, not a spin
    try:
        with _LockKeeper(client, FAST_LOCK, token, lock_ms) as keeper:
            while not keeper.lost.is_set():
                now, mono = timezone.now(), time.monotonic()
                plan = {v: at for v in _fresh() if (at := _next_check(v, ages)) is not None}
                if not plan:
                    break  # every fresh voice had its last fast check: the schedule takes over
                if mono >= stop_at:
                    more = True
                    break
                due = [v for v, at in plan.items() if at <= now and tried.get(v.pk, 0.0) <= mono]
                if due:
                    voices_check(voices=due, deadline=stop_at)
                    checks += 1
                    for voice in due:
                        tried[voice.pk] = time.monotonic() + settings.VOICE_FAST_CHECK_NAP_SECONDS
                wait = min((at - timezone.now()).total_seconds() for at in plan.values())
                # Short naps: a clone made meanwhile is picked up within one.
                time.sleep(min(max(wait, 0.05), settings.VOICE_FAST_CHECK_NAP_SECONDS))
    finally:
        try:
            client.register_script(_RELEASE_IF_OURS)(keys=[FAST_LOCK], args=[token])
        except (redis.RedisError, OSError) as exc:
            logger.info("fast voice checker lock left to expire (%s s): %s", settings.VOICE_FAST_CHECK_LOCK_SECONDS, exc)
    # A clone that committed while this run was letting go found the lock still held.
    if more or any(_next_check(v, ages) is not None for v in _fresh()):
        voice_fresh_check_queue()
    return checks
