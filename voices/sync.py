"""Voice status sync: `processing` -> `completed` / `failed`, from what the provider reports.

Clones have no webhook, so the service asks. One service (`voices_check`) serves every caller:
the fast checker (fresh clones, at about 1, 2, 4, 8 s of age), the minute schedule (every
pending voice), the daily walk over completed voices (voices removed at the provider) and the
admin's "re-check now". Transitions lock the rows first and change only those still in the status
they were read in, so two runs at once never change a voice twice or send two events for it.
"""

import logging
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
from config.api.errors import ServiceError, VoiceNotFound
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


def _processing():
    # Served by the partial index `voice_processing` (status = 'processing').
    return Voice.objects.filter(status=Voice.Status.PROCESSING, deleted_at__isnull=True, owner__isnull=False)


# --- the state machine -------------------------------------------------------------------------

def _provider_states(provider, voices: Sequence[Voice], result: CheckResult) -> dict[str, object]:
    """provider voice id -> ProviderVoice, or REMOVED once a GET confirmed the 404. Ids the
    provider did not answer for (an error) are absent: they keep their state this time."""
    states: dict[str, object] = {}
    ids = list(dict.fromkeys(v.provider_voice_id for v in voices))
    for offset in range(0, len(ids), BATCH_SIZE):
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
            if provider_voice_id in found:
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


def voices_check(*, voices: Sequence[Voice]) -> CheckResult:
    """Ask each voice's provider (in batches) and apply the state machine. Voices of a provider
    that is not configured here are skipped, never failed."""
    result = CheckResult()
    by_provider: dict[str, list[Voice]] = defaultdict(list)
    for voice in voices:
        if voice.deleted_at is None and voice.owner_id is not None:
            by_provider[voice.provider].append(voice)
    for provider_name, group in by_provider.items():
        if not is_configured(provider_name):
            result.skipped += len(group)
            continue
        states = _provider_states(get_provider(provider_name), group, result)
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
        rows = list(Voice.objects.select_for_update(skip_locked=True).filter(pk__in=changes, deleted_at__isnull=True))
        changed = []
        for voice in rows:
            read_status, status, reason, sentence = changes[voice.pk]
            if voice.status != read_status:
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
        transaction.on_commit(lambda: voice_pending_remove(voice_ids=finished))
        for voice in changed:
            # The owner's view of it (`is_mine` compares ids), without loading the owner row.
            item = dict(VoiceOutputSerializer(voice, context={"user": SimpleNamespace(pk=voice.owner_id)}).data)
            if voice.status == Voice.Status.COMPLETED:
                result.completed.append(voice.pk)
                transaction.on_commit(lambda v=voice, d=item: _announce_completed(v, d))
            else:
                result.failed.append(voice.pk)
                data = {**item, "reason": voice._reason}
                transaction.on_commit(lambda v=voice, d=data: notify_user(v.owner_id, "voice.failed", d))


def _announce_completed(voice: Voice, item: dict) -> None:
    try:
        voice_preview_render(voice=voice)
    except ServiceError as exc:  # e.g. the owner's account is going away: the voice is done anyway
        logger.warning("voice %s completed but its preview was not queued: %s", voice.pk, exc)
    notify_user(voice.owner_id, "voice.completed", item)


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


def voices_sync_pending() -> CheckResult:
    """The minute schedule: every voice in the pending set. An empty set costs no SQL and no
    provider call; with Redis unreachable the processing voices come from the database."""
    try:
        ids = _pending_ids()
    except (redis.RedisError, OSError) as exc:
        logger.warning("pending set unreadable (%s): checking processing voices from the database", exc)
        return voices_check(voices=list(_processing()))
    if not ids:
        return CheckResult()
    voices = list(Voice.objects.filter(pk__in=ids))
    live = [v for v in voices if v.status == Voice.Status.PROCESSING and v.deleted_at is None]
    done = set(ids) - {v.pk for v in live}
    if done:  # finished, deleted or gone: the set only holds voices still waiting
        voice_pending_remove(voice_ids=done)
    return voices_check(voices=live) if live else CheckResult()


def voices_pending_reconcile() -> int:
    """Put every processing voice the pending set lacks back in it (Redis keeps nothing on disk
    here). Returns how many ids were added."""
    ids = [str(pk) for pk in _processing().values_list("pk", flat=True)]
    if not ids:
        return 0
    return int(get_redis_connection("default").sadd(PENDING_SET, *ids))


def voices_reconcile_removed() -> dict[str, int]:
    """Daily: walk the completed voices of each configured provider in batches; a voice the
    provider no longer has (confirmed by a GET 404) fails with `voice_removed`. A provider error
    stops that provider's walk and changes nothing more."""
    failed: dict[str, int] = {}
    for name in PROVIDER_NAMES:
        if not is_configured(name):
            continue
        failed[name] = 0
        after = None
        while True:
            batch = Voice.objects.filter(provider=name, status=Voice.Status.COMPLETED, deleted_at__isnull=True,
                                         owner__isnull=False).order_by("pk")
            batch = list((batch.filter(pk__gt=after) if after else batch)[:BATCH_SIZE])
            if not batch:
                break
            result = voices_check(voices=batch)
            failed[name] += len(result.failed)
            if result.provider_errors:
                logger.warning("removed-voice walk of %s stopped: the provider did not answer", name)
                break
            after = batch[-1].pk
    return failed


# --- fast first checks -------------------------------------------------------------------------

def _fresh():
    window = timezone.now() - timedelta(seconds=settings.VOICE_FAST_CHECK_WINDOW_SECONDS)
    return _processing().filter(created_at__gte=window)


def voices_check_fresh() -> int:
    """Check clones younger than the fast window at about 1, 2, 4, 8... s of age. One checker at
    a time covers every fresh voice (a Redis lock); it holds its worker only while fresh voices
    exist and at most VOICE_FAST_CHECK_RUN_SECONDS, then hands over to a new task. Returns the
    number of checks it made."""
    client = get_redis_connection("default")
    token = uuid.uuid4().hex
    lock_ms = int(settings.VOICE_FAST_CHECK_LOCK_SECONDS * 1000)
    try:
        if not client.set(FAST_LOCK, token, nx=True, px=lock_ms):
            return 0  # the running checker will see this voice on its next pass
    except (redis.RedisError, OSError) as exc:
        logger.warning("fast voice checks off while Redis is unreachable (%s); the schedule covers them", exc)
        return 0
    renew = client.register_script(_RENEW_IF_OURS)
    checks, more = 0, False
    stop_at = time.monotonic() + settings.VOICE_FAST_CHECK_RUN_SECONDS
    due_at: dict[UUID, float] = {}
    try:
        while True:
            fresh = list(_fresh())
            if not fresh:
                break
            now = time.monotonic()
            due = [v for v in fresh if due_at.get(v.pk, 0.0) <= now]
            if due:
                voices_check(voices=due)
                checks += 1
                wall = timezone.now()
                for voice in due:
                    # Next check at twice the voice's age: 1, 2, 4, 8, 16, 32 s.
                    due_at[voice.pk] = time.monotonic() + max(1.0, (wall - voice.created_at).total_seconds())
            if time.monotonic() >= stop_at:
                more = True
                break
            pending = [due_at[v.pk] for v in fresh if v.pk in due_at]
            # Short naps: a clone made meanwhile is picked up within one.
            time.sleep(min(max(min(pending, default=now) - time.monotonic(), 0.05), settings.VOICE_FAST_CHECK_NAP_SECONDS))
            if not renew(keys=[FAST_LOCK], args=[token, lock_ms]):
                break  # lost the lock (a pass outlived it): the checker that holds it now goes on
    finally:
        try:
            client.register_script(_RELEASE_IF_OURS)(keys=[FAST_LOCK], args=[token])
        except (redis.RedisError, OSError):
            pass  # the lock expires by itself
    # A clone that committed while this run was letting go found the lock still held.
    if more or _fresh().exists():
        voice_fresh_check_queue()
    return checks
