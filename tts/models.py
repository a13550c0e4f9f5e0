from django.db import models


class LocalProviderVoice(models.Model):
    """A voice cloned by the offline `local` provider: an eSpeak NG voice tuned to the speaker's pitch.

    This is the provider's own state (what ElevenLabs would keep on its servers), not the user's
    voice library: web and worker processes both read it, so it lives in the database."""

    provider_voice_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    language = models.CharField(max_length=16)  # as reported to callers, e.g. "ko"
    gender = models.CharField(max_length=16)
    labels = models.JSONField(default=dict, blank=True)
    espeak_voice = models.CharField(max_length=64)  # eSpeak language + variant, e.g. "ko+f3"
    pitch = models.PositiveSmallIntegerField()  # eSpeak's 0-100 pitch parameter
    measured_f0_hz = models.FloatField()  # median fundamental frequency of the samples
    created_at = models.DateTimeField()
    # Clones are "processing" until then, as with a hosted provider, so the sync path is exercised.
    ready_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.provider_voice_id})"
