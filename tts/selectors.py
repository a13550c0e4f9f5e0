from uuid import UUID

from django.db.models import QuerySet

from config.api.errors import JobNotFound

from .models import SpeechJob


def speech_job_list(*, user) -> QuerySet[SpeechJob]:
    """The caller's jobs, newest first (filters narrow it in the view)."""
    return SpeechJob.objects.filter(owner=user).select_related("clip").order_by("-created_at", "-id")


def speech_job_get(*, user, job_id: UUID) -> SpeechJob:
    job = SpeechJob.objects.filter(owner=user, pk=job_id).select_related("clip").first()
    if job is None:
        raise JobNotFound()
    return job


def preview_clip_id(*, voice_id: UUID) -> UUID | None:
    """The clip of a voice's latest succeeded preview job."""
    return (SpeechJob.objects.filter(voice_id=voice_id, purpose=SpeechJob.Purpose.PREVIEW,
                                     status=SpeechJob.Status.SUCCEEDED)
            .order_by("-finished_at").values_list("clip_id", flat=True).first())
