"""The speech engine's writes. Voices are addressed as provider + provider voice id only."""

import hashlib
import json
from collections.abc import Mapping, Sequence


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


def speech_jobs_wake(*, count: int = 1) -> None:
    """Wake runners on the tts cluster; each claims whichever job is fairest next."""
    from django_q.tasks import async_task

    for _ in range(count):
        async_task("tts.tasks.run_next_speech_job", cluster="tts")


def speech_job_create(*, owner, provider: str, provider_voice_id: str, text: str, model_id: str,
                      output_format: str, language: str = "", voice_settings: Mapping | None = None,
                      previous_text: str = "", next_text: str = "", pronunciation_locators: Sequence = (),
                      seed: int | None = None, purpose: str = "generate", voice_id=None,
                      idempotency_key: str = "", charge: bool = True):
    """Reserve the text's characters from the owner's quota (429 `quota_exceeded` when they do
    not fit) and queue the job; a runner is woken once the job is committed. `charge=False`
    (previews the service renders for itself) reserves nothing."""
    from django.db import transaction

    from .models import SpeechJob
    from .quota import quota_reserve

    inputs = dict(provider=provider, provider_voice_id=provider_voice_id, model_id=model_id, language=language,
                  text=text, previous_text=previous_text, next_text=next_text, voice_settings=dict(voice_settings or {}),
                  pronunciation_locators=list(pronunciation_locators), seed=seed, output_format=output_format)
    with transaction.atomic():
        month = quota_reserve(user=owner, characters=len(text)) if charge else None
        job = SpeechJob.objects.create(
            owner=owner, voice_id=voice_id, purpose=purpose, characters=len(text), quota_month=month,
            content_hash=speech_content_hash(**inputs), idempotency_key=idempotency_key, **inputs)
        transaction.on_commit(lambda: speech_jobs_wake())
    return job


def speech_job_cancel(*, user, job_id):
    """The owner cancels a queued job: it will not run, and its characters go back."""
    from django.db import transaction
    from django.utils import timezone

    from config.api.errors import JobNotCancellable, JobNotFound

    from .models import SpeechJob
    from .quota import quota_release

    with transaction.atomic():
        job = SpeechJob.objects.select_for_update().filter(owner=user, pk=job_id).first()
        if job is None:
            raise JobNotFound()
        if job.status != SpeechJob.Status.QUEUED:
            raise JobNotCancellable(f"The job is {job.status}; only a queued job can be cancelled.",
                                    details={"status": job.status})
        SpeechJob.objects.filter(pk=job.pk).update(status=SpeechJob.Status.CANCELLED, finished_at=timezone.now())
        quota_release(user_id=job.owner_id, month=job.quota_month, reserved=job.characters)
    job.refresh_from_db()
    return job


def speech_jobs_delete_for_account(*, user) -> None:
    """Account cleanup step: the user's jobs go, and so do the clips (and files) no one else's
    job uses any more."""
    from django.core.files.storage import default_storage
    from django.db import transaction

    from .models import AudioClip, SpeechJob

    with transaction.atomic():
        clip_ids = set(SpeechJob.objects.filter(owner=user, clip__isnull=False).values_list("clip_id", flat=True))
        SpeechJob.objects.filter(owner=user).delete()
        orphans = AudioClip.objects.filter(pk__in=clip_ids, jobs__isnull=True)
        paths = [p for p in orphans.values_list("file", flat=True) if p]
        orphans.delete()
        transaction.on_commit(lambda: [default_storage.delete(path) for path in paths])


def speech_jobs_retry(*, job_ids) -> tuple[int, int]:
    """Admin: queue failed or cancelled jobs again. Their characters are reserved again (they
    were released when the job ended); a job whose owner has no quota left stays as it is.
    Returns (requeued, refused for quota)."""
    from django.db import transaction

    from config.api.errors import QuotaExceeded

    from .models import SpeechJob
    from .quota import quota_reserve

    requeued = refused = 0
    for job in SpeechJob.objects.filter(pk__in=job_ids, status__in=[SpeechJob.Status.FAILED,
                                                                    SpeechJob.Status.CANCELLED]).select_related("owner"):
        try:
            with transaction.atomic():
                month = quota_reserve(user=job.owner, characters=job.characters)
                changed = SpeechJob.objects.filter(pk=job.pk, status=job.status).update(
                    status=SpeechJob.Status.QUEUED, quota_month=month, error_code="", error_message="",
                    run_token=None, started_at=None, finished_at=None)
                if not changed:
                    raise QuotaExceeded()  # changed meanwhile: undo the reservation
                transaction.on_commit(lambda: speech_jobs_wake())
            requeued += 1
        except QuotaExceeded:
            refused += 1
    return requeued, refused


def speech_jobs_cancel_queued(*, job_ids) -> int:
    """Admin: cancel queued jobs, releasing their characters."""
    from django.db import transaction
    from django.utils import timezone

    from .models import SpeechJob
    from .quota import quota_release

    cancelled = 0
    with transaction.atomic():
        for job in SpeechJob.objects.select_for_update().filter(pk__in=job_ids, status=SpeechJob.Status.QUEUED):
            SpeechJob.objects.filter(pk=job.pk).update(status=SpeechJob.Status.CANCELLED, finished_at=timezone.now())
            quota_release(user_id=job.owner_id, month=job.quota_month, reserved=job.characters)
            cancelled += 1
    return cancelled
