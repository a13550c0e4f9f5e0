import uuid

from django.conf import settings
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


class AudioClip(models.Model):
    """One rendered audio file, keyed by the hash of every input that changes the sound: the same
    request twice reuses it (no second provider call, no second charge)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    content_hash = models.CharField(max_length=64, unique=True)
    file = models.FileField(upload_to="tts-clips/", max_length=200)
    mime_type = models.CharField(max_length=64)
    output_format = models.CharField(max_length=32)
    duration_ms = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField()
    # [{"word", "start_ms", "end_ms"}], on the clip's own clock.
    words = models.JSONField(default=list, blank=True)
    provider = models.CharField(max_length=32)
    provider_voice_id = models.CharField(max_length=128)
    model_id = models.CharField(max_length=64, blank=True)
    # A loudness-matched rendition points at the clip it was made from (which stays as it was,
    # shared by content). The loudness figures are what this clip measures, once it was matched
    # or used as a source.
    source = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="renditions")
    loudness_lufs = models.FloatField(null=True, blank=True)
    true_peak_dbtp = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.content_hash[:12]} ({self.output_format}, {self.duration_ms} ms)"


class SpeechJob(models.Model):
    """One text-to-speech request and its way through the worker queue.

    The engine knows voices only as `provider` + `provider_voice_id`; `voice` points back at the
    library's row for display. `run_token` fences a stale run: only the run holding the current
    token may write a result or a charge."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Purpose(models.TextChoices):
        GENERATE = "generate"
        PREVIEW = "preview"
        STORY_LINE = "story_line"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="speech_jobs")
    voice = models.ForeignKey("voices.Voice", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.GENERATE)
    provider = models.CharField(max_length=32)
    provider_voice_id = models.CharField(max_length=128)
    text = models.TextField()
    model_id = models.CharField(max_length=64)
    language = models.CharField(max_length=16, blank=True)
    output_format = models.CharField(max_length=32)
    voice_settings = models.JSONField(default=dict, blank=True)
    previous_text = models.TextField(blank=True)
    next_text = models.TextField(blank=True)
    pronunciation_locators = models.JSONField(default=list, blank=True)
    seed = models.PositiveIntegerField(null=True, blank=True)
    content_hash = models.CharField(max_length=64)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    run_token = models.UUIDField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    provider_request_id = models.CharField(max_length=128, blank=True)
    # Characters reserved from the owner's quota at creation; what the provider charged at the end.
    characters = models.PositiveIntegerField()
    # The month the characters were reserved in (settled there too); None: not charged (previews
    # the service renders for itself).
    quota_month = models.DateField(null=True, blank=True)
    character_cost = models.PositiveIntegerField(null=True, blank=True)
    # How many times the provider was really called for this job (> 1 only after a retry or crash).
    provider_calls = models.PositiveSmallIntegerField(default=0)
    clip = models.ForeignKey(AudioClip, on_delete=models.PROTECT, null=True, blank=True, related_name="jobs")
    idempotency_key = models.CharField(max_length=255, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="speechjob_owner_list"),
            models.Index(fields=["content_hash"], name="speechjob_hash"),
            # What runners claim next, and what the reaper looks at.
            models.Index(fields=["created_at"], name="speechjob_queued", condition=models.Q(status="queued")),
            models.Index(fields=["started_at"], name="speechjob_running", condition=models.Q(status="running")),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} {self.id} ({self.status})"


class QuotaMonth(models.Model):
    """A user's characters in one calendar month (UTC): used (settled from the provider's
    character cost) and reserved (jobs queued or running). Rows are locked to reserve, so
    concurrent requests cannot overrun the quota."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    month = models.DateField()  # the first day of the month
    used = models.PositiveIntegerField(default=0)
    reserved = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "month"], name="quota_month_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.month:%Y-%m}: {self.used} used, {self.reserved} reserved"
