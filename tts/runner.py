"""Running speech jobs: claim fairly, fence stale runs, reuse clips, one render per hash, hold a
global slot for each provider call, retry what is transient, settle the quota exactly once.

The job table decides what runs next (a queue task only wakes a runner), so the order is fair
across any number of clusters: the next job is the oldest queued one of the owner with the fewest
jobs running. Every write a run makes is conditional on its run token, so a run the reaper
replaced can no longer write a result or a charge.
"""

import logging
import random
import time
import uuid
from datetime import timedelta
from uuid import UUID

import redis
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_redis import get_redis_connection

from accounts.events import notify_user
from config.api.errors import ServiceError

from .audio import UndecodableAudio, decode_audio, raw_duration_ms
from .limiter import ConcurrencyLimiter, SlotWaitExceeded
from .models import AudioClip, SpeechJob
from .providers import ProviderError, SpeechRequest, get_provider
from .quota import quota_release, quota_settle

logger = logging.getLogger(__name__)

RENDER_KEY = "tts:render:{hash}"

# Later apps react to a finished job in its transaction (the voice library counts its voice's
# uses, a book follows its lines); the engine does not import them. Each is called as
# `hook(job=...)`: success hooks when it succeeded, finish hooks when it succeeded or failed.
_success_hooks: list = []
_finish_hooks: list = []


def register_success_hook(hook) -> None:
    if hook not in _success_hooks:
        _success_hooks.append(hook)


def register_finish_hook(hook) -> None:
    if hook not in _finish_hooks:
        _finish_hooks.append(hook)


# Called first in the transaction that ends a job, to take the locks a finish hook needs before
# the engine takes its own (the job row, the quota month, the user): an app whose writes lock
# its rows in that order (a book, then the quota) would otherwise deadlock with a finishing job.
_lock_hooks: list = []


def register_lock_hook(hook) -> None:
    if hook not in _lock_hooks:
        _lock_hooks.append(hook)


class Requeue(Exception):
    """A capped wait ran out (a slot, or another job's render of the same hash): the job goes
    back to the queue without using an attempt."""


# --- claiming ------------------------------------------------------------------------------------

def speech_job_claim_next() -> tuple[UUID, UUID] | None:
    """Claim the next queued job: (job id, run token), or None when nothing is queued.

    SKIP LOCKED lets runners in any number of processes claim different jobs at once."""
    running = (SpeechJob.objects.filter(owner=OuterRef("owner"), status=SpeechJob.Status.RUNNING)
               .values("owner").annotate(n=Count("id")).values("n"))
    with transaction.atomic():
        job = (SpeechJob.objects.select_for_update(skip_locked=True, of=("self",))
               .filter(status=SpeechJob.Status.QUEUED)
               .annotate(owner_running=Coalesce(Subquery(running, output_field=IntegerField()), Value(0)))
               .order_by("owner_running", "created_at").only("id").first())
        if job is None:
            return None
        token = uuid.uuid4()
        SpeechJob.objects.filter(pk=job.pk).update(status=SpeechJob.Status.RUNNING, run_token=token,
                                                   attempts=F("attempts") + 1, started_at=timezone.now())
    return job.pk, token


def _fenced(job_id: UUID, run_token: UUID):
    """The job's row, only while this run still holds it."""
    return SpeechJob.objects.filter(pk=job_id, run_token=run_token, status=SpeechJob.Status.RUNNING)


def speech_job_requeue(*, job_id: UUID, run_token: UUID) -> bool:
    """Back to the queue without using an attempt (a capped wait ran out)."""
    return bool(_fenced(job_id, run_token).update(status=SpeechJob.Status.QUEUED, run_token=None,
                                                  attempts=F("attempts") - 1, started_at=None))


# --- finishing (each exactly once, fenced) ---------------------------------------------------------

def _succeed(job: SpeechJob, run_token: UUID, clip: AudioClip, *, cost: int, request_id: str = "") -> bool:
    with transaction.atomic():
        for hook in _lock_hooks:
            hook(job=job)
        changed = _fenced(job.pk, run_token).update(
            status=SpeechJob.Status.SUCCEEDED, clip=clip, character_cost=cost, provider_request_id=request_id[:128],
            finished_at=timezone.now(), error_code="", error_message="")
        if not changed:
            return False  # a stale run: the current one settles
        quota_settle(user_id=job.owner_id, month=job.quota_month, reserved=job.characters, cost=cost)
        job.status, job.clip = SpeechJob.Status.SUCCEEDED, clip
        for hook in (*_success_hooks, *_finish_hooks):
            hook(job=job)
        data = {"job_id": str(job.pk), "purpose": job.purpose, "voice_id": str(job.voice_id) if job.voice_id else None}
        transaction.on_commit(lambda: notify_user(job.owner_id, "tts.job.succeeded", data))
    # Counts only: a job's text is the family's story and never goes in a log.
    logger.info("speech job %s succeeded: %d characters, cost %d", job.pk, job.characters, cost)
    return True


def _fail(job: SpeechJob, run_token: UUID, error: ServiceError) -> bool:
    return _end_failed(job, _fenced(job.pk, run_token), error)


def speech_jobs_fail_queued(*, job_ids, error: ServiceError) -> int:
    """End the still-queued ones of these jobs as failed with `error` (their voice was blocked):
    each releases its characters, tells its owner and its book, as a failed run would."""
    failed = 0
    for job in SpeechJob.objects.filter(pk__in=job_ids, status=SpeechJob.Status.QUEUED):
        failed += _end_failed(job, SpeechJob.objects.filter(pk=job.pk, status=SpeechJob.Status.QUEUED), error)
    return failed


def _end_failed(job: SpeechJob, fence, error: ServiceError) -> bool:
    """Fail `job` if `fence` (its row, as the caller expects it) still matches."""
    with transaction.atomic():
        for hook in _lock_hooks:
            hook(job=job)
        changed = fence.update(
            status=SpeechJob.Status.FAILED, error_code=error.code, error_message=str(error.message)[:500],
            finished_at=timezone.now())
        if not changed:
            return False
        quota_release(user_id=job.owner_id, month=job.quota_month, reserved=job.characters)
        job.status, job.error_code = SpeechJob.Status.FAILED, error.code
        for hook in _finish_hooks:
            hook(job=job)
        data = {"job_id": str(job.pk), "purpose": job.purpose, "error": {"code": error.code, "message": error.message}}
        transaction.on_commit(lambda: notify_user(job.owner_id, "tts.job.failed", data))
    return True


# --- rendering -------------------------------------------------------------------------------------

def _clip_name(content_hash: str, output_format: str) -> str:
    extension = output_format.partition("_")[0] or "bin"
    return f"tts-clips/{content_hash[:2]}/{content_hash}.{extension}"


def _store_clip(job: SpeechJob, result) -> AudioClip:
    duration_ms = raw_duration_ms(job.output_format, len(result.audio))
    if duration_ms is None:
        try:
            duration_ms = round(decode_audio(result.audio).duration_seconds * 1000)
        except UndecodableAudio:
            duration_ms = max((w.end_ms for w in result.words or []), default=0)
    path = default_storage.save(_clip_name(job.content_hash, job.output_format), ContentFile(result.audio))
    words = [{"word": w.word, "start_ms": w.start_ms, "end_ms": w.end_ms} for w in result.words or []]
    try:
        with transaction.atomic():
            return AudioClip.objects.create(
                content_hash=job.content_hash, file=path, mime_type=result.mime_type, output_format=job.output_format,
                duration_ms=duration_ms, size_bytes=len(result.audio), words=words, provider=job.provider,
                provider_voice_id=job.provider_voice_id, model_id=job.model_id)
    except IntegrityError:  # stored by a run of the same hash that finished first: use that one
        default_storage.delete(path)
        return AudioClip.objects.get(content_hash=job.content_hash)


def _backoff(attempt: int, error: ProviderError) -> float:
    if error.retry_after is not None:
        return min(error.retry_after, settings.TTS_BACKOFF_MAX_SECONDS)
    ceiling = min(settings.TTS_BACKOFF_MAX_SECONDS, settings.TTS_BACKOFF_BASE_SECONDS * 2 ** attempt)
    return random.uniform(ceiling / 2, ceiling)  # jitter: retries of a burst do not line up


def _render(job: SpeechJob, run_token: UUID):
    """Call the provider, holding a global slot for each call and none while backing off."""
    provider = get_provider(job.provider)
    request = SpeechRequest(
        provider_voice_id=job.provider_voice_id, text=job.text, model_id=job.model_id, language=job.language,
        output_format=job.output_format, voice_settings=job.voice_settings or None, seed=job.seed,
        previous_text=job.previous_text, next_text=job.next_text, with_timestamps=True,
        pronunciation_locators=tuple(job.pronunciation_locators or ()))
    limiter = ConcurrencyLimiter()
    # One budget for slot waits across the attempts, so the run's bound does not grow with them.
    slot_deadline = time.monotonic() + settings.TTS_SLOT_WAIT_SECONDS
    for attempt in range(settings.TTS_CALL_ATTEMPTS):
        with limiter.slot(wait_seconds=max(0.0, slot_deadline - time.monotonic())):
            if not _fenced(job.pk, run_token).update(provider_calls=F("provider_calls") + 1):
                return None  # replaced while waiting for the slot: leave it to the current run
            try:
                return provider.synthesize(request)
            except ProviderError as exc:
                error = exc
        if not error.transient or attempt + 1 == settings.TTS_CALL_ATTEMPTS:
            raise error
        pause = _backoff(attempt, error)
        logger.info("speech job %s: %s; retrying in %.1f s", job.pk, error.code, pause)
        time.sleep(pause)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _single_flight(content_hash: str) -> bool:
    """Take the one render of this hash (True), or learn that another run is rendering it."""
    return bool(get_redis_connection("default").set(
        RENDER_KEY.format(hash=content_hash), "1", nx=True, px=int(settings.TTS_RENDER_LOCK_SECONDS * 1000)))


def _release_render(content_hash: str) -> None:
    get_redis_connection("default").delete(RENDER_KEY.format(hash=content_hash))


def _stored_clip_or_render(content_hash: str) -> AudioClip | None:
    """The stored clip of this hash, or None once this run holds its one render.

    A render stores its clip before it releases the key, so a check made after taking the key
    sees the clip of any render that finished in between (that run must not render again)."""
    deadline = time.monotonic() + settings.TTS_RENDER_WAIT_SECONDS
    while True:
        clip = AudioClip.objects.filter(content_hash=content_hash).first()
        if clip is not None:
            return clip
        if _single_flight(content_hash):
            clip = AudioClip.objects.filter(content_hash=content_hash).first()
            if clip is None:
                return None
            _release_render(content_hash)
            return clip
        if time.monotonic() >= deadline:
            raise Requeue("another job is still rendering the same audio")
        time.sleep(0.1)


def speech_job_run(*, job_id: UUID, run_token: UUID) -> str:
    """Run one claimed job to its end. Returns what happened (for the task's result and logs);
    never raises for a job-level failure, which is recorded on the row instead."""
    job = _fenced(job_id, run_token).first()
    if job is None:
        return "stale"
    try:
        clip = _stored_clip_or_render(job.content_hash)
        if clip is not None:
            return "reused" if _succeed(job, run_token, clip, cost=0) else "stale"
        try:
            result = _render(job, run_token)
            if result is None:
                return "stale"
            clip = _store_clip(job, result)
        finally:
            _release_render(job.content_hash)
        cost = result.character_cost if result.character_cost is not None else job.characters
        return "succeeded" if _succeed(job, run_token, clip, cost=cost, request_id=result.request_id or "") else "stale"
    except (Requeue, SlotWaitExceeded) as exc:
        logger.info("speech job %s requeued: %s", job_id, exc)
        speech_job_requeue(job_id=job_id, run_token=run_token)
        return "requeued"
    except ServiceError as exc:
        return "failed" if _fail(job, run_token, exc) else "stale"
    except (redis.RedisError, OSError) as exc:
        # The limiter or the single-flight key is unreachable: no provider call without them.
        # "deferred", not "requeued": waking a runner at once would spin while Redis is down;
        # the reaper's minute wakes runners for jobs left waiting.
        logger.warning("speech job %s deferred: Redis unavailable (%s)", job_id, exc)
        speech_job_requeue(job_id=job_id, run_token=run_token)
        return "deferred"


def speech_jobs_reap() -> int:
    """Requeue jobs stuck in `running` past the reaper age (their worker died); the new run gets
    a new token, so the old one can no longer write."""
    cutoff = timezone.now() - timedelta(seconds=settings.TTS_REAPER_AGE_SECONDS)
    return SpeechJob.objects.filter(Q(status=SpeechJob.Status.RUNNING) & Q(started_at__lt=cutoff)).update(
        status=SpeechJob.Status.QUEUED, run_token=None, started_at=None)
