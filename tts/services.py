"""The speech engine's writes. Voices are addressed as provider + provider voice id only."""

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from config.api.errors import JobNotCancellable, JobNotFound, QuotaExceeded

from .audio import decode_audio
from .loudness import match_encoded
from .models import AudioClip, SpeechJob
from .quota import quota_release, quota_reserve


def speech_content_hash(*, provider: str, provider_voice_id: str, model_id: str, language: str, text: str,
                        previous_text: str, next_text: str, voice_settings: Mapping, pronunciation_locators: Sequence,
                        seed: int | None, output_format: str) -> str:
    """The key of an AudioClip: every input that changes the audio, in one canonical form, so
    equal requests share a clip and any difference (a setting, the format, the neighbouring
    text that shapes prosody) makes a new one."""
    canonical = json.dumps(
        {
            "provider": provider, "provider_voice_id": provider_voice_id, "model_id": model_id,
            "language": language, "text": text, "previous_text": previous_text, "next_text": next_text,
            "voice_settings": dict(voice_settings), "pronunciation_locators": list(pronunciation_locators),
            "seed": seed, "output_format": output_format,
        },
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


LOUDNESS_RATE = 44_100
LOUDNESS_FORMAT = "mp3_44100_128"


def _rendition_hash(clip: AudioClip, target_lufs: float, true_peak_dbtp: float) -> str:
    return hashlib.sha256(f"loudness:{clip.content_hash}:{target_lufs:.2f}:{true_peak_dbtp:.2f}".encode()).hexdigest()


def clip_loudness_rendition(*, clip: AudioClip, target_lufs: float, true_peak_dbtp: float) -> AudioClip | None:
    """The clip's rendition at that loudness if it was made already."""
    return AudioClip.objects.filter(content_hash=_rendition_hash(clip, target_lufs, true_peak_dbtp)).first()


def clip_loudness_matched(*, clip: AudioClip, target_lufs: float, true_peak_dbtp: float) -> AudioClip:
    """The clip at `target_lufs` under `true_peak_dbtp`: a rendition made once per clip and
    setting, sharing the clip's word timings. The clip itself stays as it was (other jobs and
    books reuse it by content)."""
    rendition = clip_loudness_rendition(clip=clip, target_lufs=target_lufs, true_peak_dbtp=true_peak_dbtp)
    if rendition is not None:
        return rendition
    content_hash = _rendition_hash(clip, target_lufs, true_peak_dbtp)
    with default_storage.open(clip.file.name, "rb") as f:
        source = decode_audio(f.read(), pcm_rate=LOUDNESS_RATE).pcm.tobytes()
    matched = match_encoded(source, LOUDNESS_RATE, target_lufs=target_lufs, true_peak_dbtp=true_peak_dbtp,
                            output_format=LOUDNESS_FORMAT)
    data, loudness = matched.data, matched.loudness
    AudioClip.objects.filter(pk=clip.pk).update(loudness_lufs=matched.source.integrated_lufs,
                                                true_peak_dbtp=matched.source.true_peak_dbtp)
    path = default_storage.save(f"tts-clips/{content_hash[:2]}/{content_hash}.mp3", ContentFile(data))
    rendition, created = AudioClip.objects.get_or_create(content_hash=content_hash, defaults={
        "file": path, "mime_type": "audio/mpeg", "output_format": LOUDNESS_FORMAT,
        "duration_ms": matched.samples * 1000 // LOUDNESS_RATE, "size_bytes": len(data), "words": clip.words,
        "provider": clip.provider, "provider_voice_id": clip.provider_voice_id, "model_id": clip.model_id,
        "source": clip, "loudness_lufs": loudness.integrated_lufs, "true_peak_dbtp": loudness.true_peak_dbtp})
    if not created:  # another build made it first
        default_storage.delete(path)
    return rendition


def speech_jobs_wake(*, count: int = 1) -> None:
    """Wake runners on the tts cluster; each claims whichever job is fairest next."""
    from django_q.tasks import async_task

    for _ in range(count):
        async_task("tts.tasks.run_next_speech_job", cluster="tts")


def speech_jobs_waiting(*, older_than_seconds: float) -> int:
    """Queued jobs no runner has taken for a while (their wake-up was deferred or lost)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return SpeechJob.objects.filter(status=SpeechJob.Status.QUEUED, created_at__lt=cutoff).count()


def speech_job_create(*, owner, provider: str, provider_voice_id: str, text: str, model_id: str,
                      output_format: str, language: str = "", voice_settings: Mapping | None = None,
                      previous_text: str = "", next_text: str = "", pronunciation_locators: Sequence = (),
                      seed: int | None = None, purpose: str = "generate", voice_id=None,
                      idempotency_key: str = "", charge: bool = True, reserved_in: date | None = None,
                      wake: bool = True) -> SpeechJob:
    """Reserve the text's characters from the owner's quota (429 `quota_exceeded` when they do
    not fit) and queue the job; a runner is woken once the job is committed. `charge=False`
    (previews the service renders for itself) reserves nothing; `reserved_in` says the caller
    already reserved them in that month (a book reserves all its lines at once); `wake=False`
    leaves waking runners to the caller (one wake-up for many jobs)."""
    inputs = dict(provider=provider, provider_voice_id=provider_voice_id, model_id=model_id, language=language,
                  text=text, previous_text=previous_text, next_text=next_text, voice_settings=dict(voice_settings or {}),
                  pronunciation_locators=list(pronunciation_locators), seed=seed, output_format=output_format)
    with transaction.atomic():
        if reserved_in is not None:
            month = reserved_in
        else:
            month = quota_reserve(user=owner, characters=len(text)) if charge else None
        job = SpeechJob.objects.create(
            owner=owner, voice_id=voice_id, purpose=purpose, characters=len(text), quota_month=month,
            content_hash=speech_content_hash(**inputs), idempotency_key=idempotency_key, **inputs)
        if wake:
            transaction.on_commit(lambda: speech_jobs_wake(), robust=True)
    return job


def _cancel_locked(job: SpeechJob) -> None:
    """Cancel a queued job whose row the caller has locked; its characters go back."""
    SpeechJob.objects.filter(pk=job.pk).update(status=SpeechJob.Status.CANCELLED, finished_at=timezone.now())
    quota_release(user_id=job.owner_id, month=job.quota_month, reserved=job.characters)


def speech_job_cancel(*, user, job_id) -> SpeechJob:
    """The owner cancels a queued job: it will not run, and its characters go back."""
    with transaction.atomic():
        job = SpeechJob.objects.select_for_update().filter(owner=user, pk=job_id).first()
        if job is None:
            raise JobNotFound()
        if job.status != SpeechJob.Status.QUEUED:
            raise JobNotCancellable(f"The job is {job.status}; only a queued job can be cancelled.",
                                    details={"status": job.status})
        if job.purpose == SpeechJob.Purpose.STORY_LINE:  # its book follows its lines: cancel there
            raise JobNotCancellable("This job narrates a book's line; cancel it with the book "
                                    "(POST /storybook/books/{id}/cancel).", details={"status": job.status})
        _cancel_locked(job)
    job.refresh_from_db()
    return job


def speech_jobs_cancel_queued(*, job_ids) -> int:
    """Admin: cancel the queued ones of these jobs."""
    with transaction.atomic():
        jobs = list(SpeechJob.objects.select_for_update().filter(pk__in=job_ids, status=SpeechJob.Status.QUEUED))
        for job in jobs:
            _cancel_locked(job)
    return len(jobs)


def speech_jobs_retry(*, job_ids) -> tuple[int, int]:
    """Admin: queue failed or cancelled jobs again. Their characters are reserved again (they
    were released when the job ended; uncharged previews stay uncharged); a job whose owner has
    no quota left stays as it is. Returns (requeued, refused for quota)."""
    requeued = refused = 0
    for job_id in job_ids:
        with transaction.atomic():
            job = (SpeechJob.objects.select_for_update().select_related("owner")
                   .filter(pk=job_id, status__in=[SpeechJob.Status.FAILED, SpeechJob.Status.CANCELLED]).first())
            if job is None:
                continue
            month = None
            if job.quota_month is not None:
                try:
                    month = quota_reserve(user=job.owner, characters=job.characters)
                except QuotaExceeded:
                    refused += 1
                    continue
            SpeechJob.objects.filter(pk=job.pk).update(
                status=SpeechJob.Status.QUEUED, quota_month=month, error_code="", error_message="",
                run_token=None, started_at=None, finished_at=None)
            transaction.on_commit(lambda: speech_jobs_wake())
        requeued += 1
    return requeued, refused


def speech_jobs_delete_for_account(*, user) -> None:
    """Account cleanup step: the user's jobs go, and so do the clips (and files) no one else's
    job uses any more."""
    with transaction.atomic():
        clip_ids = set(SpeechJob.objects.filter(owner=user, clip__isnull=False).values_list("clip_id", flat=True))
        SpeechJob.objects.filter(owner=user).delete()
        orphans = AudioClip.objects.filter(pk__in=clip_ids, jobs__isnull=True)
        # Their loudness-matched renditions go with them (rows by cascade, files here).
        paths = [p for p in [*orphans.values_list("file", flat=True),
                             *AudioClip.objects.filter(source__in=orphans).values_list("file", flat=True)] if p]
        orphans.delete()
        transaction.on_commit(lambda: [default_storage.delete(path) for path in paths])
