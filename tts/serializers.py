from rest_framework import serializers

from .models import SpeechJob


class WordSerializer(serializers.Serializer):
    word = serializers.CharField()
    start_ms = serializers.IntegerField()
    end_ms = serializers.IntegerField()


class JobErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class SpeechJobOutputSerializer(serializers.Serializer):
    """A job as its owner sees it; `audio_url` is signed and expires."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=SpeechJob.Status.choices)
    voice_id = serializers.UUIDField(allow_null=True)
    text = serializers.CharField()
    characters = serializers.IntegerField()
    purpose = serializers.ChoiceField(choices=SpeechJob.Purpose.choices)
    output_format = serializers.CharField()
    audio_url = serializers.URLField(allow_null=True)
    audio_expires_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    words = WordSerializer(many=True)
    error = JobErrorSerializer(allow_null=True)
    provider_calls = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


def render_job(job: SpeechJob, *, request) -> dict:
    from .audio_urls import clip_url

    clip = job.clip if job.clip_id else None
    url, expires = clip_url(request=request, clip_id=clip.pk) if clip is not None else (None, None)
    return SpeechJobOutputSerializer({
        "id": job.pk, "status": job.status, "voice_id": job.voice_id, "text": job.text, "characters": job.characters,
        "purpose": job.purpose, "output_format": job.output_format, "audio_url": url, "audio_expires_at": expires,
        "duration_ms": clip.duration_ms if clip else None, "words": clip.words if clip else [],
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "provider_calls": job.provider_calls, "created_at": job.created_at, "finished_at": job.finished_at,
    }).data


class QuotaOutputSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM (UTC)")
    limit = serializers.IntegerField()
    used = serializers.IntegerField()
    reserved = serializers.IntegerField()
    remaining = serializers.IntegerField()
