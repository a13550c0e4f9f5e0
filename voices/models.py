import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Voice(models.Model):
    class Visibility(models.TextChoices):
        PRIVATE = "private"
        PUBLIC = "public"
        DEFAULT = "default"

    class Status(models.TextChoices):
        PROCESSING = "processing"
        COMPLETED = "completed"
        FAILED = "failed"

    class Category(models.TextChoices):
        PREMADE = "premade"
        CLONED = "cloned"
        GENERATED = "generated"
        PROFESSIONAL = "professional"

    class Moderation(models.TextChoices):
        NOT_REQUIRED = "not_required"
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"
        BLOCKED = "blocked"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Null only for the provider's own default voices (visibility='default'; the constraint below).
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                              related_name="voices")
    provider = models.CharField(max_length=32)
    provider_voice_id = models.CharField(max_length=128)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    language = models.CharField(max_length=16, blank=True)
    gender = models.CharField(max_length=16, blank=True)
    category = models.CharField(max_length=16, choices=Category.choices, default=Category.CLONED)
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.PRIVATE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROCESSING)
    failure_reason = models.CharField(max_length=300, blank=True)

    moderation_status = models.CharField(max_length=16, choices=Moderation.choices, default=Moderation.NOT_REQUIRED)
    moderation_note = models.TextField(blank=True)
    moderated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    moderated_at = models.DateTimeField(null=True, blank=True)

    # Consent record: who attested that the speaker agreed to be cloned, and when.
    consent_attested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                            blank=True, related_name="+")
    consent_attested_at = models.DateTimeField(null=True, blank=True)
    consent_statement = models.CharField(max_length=300, blank=True)

    usage_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Soft delete: the provider voice and sample files are gone; the row stays for job history.
    deleted_at = models.DateTimeField(null=True, blank=True)
    sync_deadline = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "provider_voice_id"], name="voice_provider_id_unique"),
            models.CheckConstraint(
                condition=(Q(owner__isnull=True) & Q(visibility="default"))
                | (Q(owner__isnull=False) & ~Q(visibility="default")),
                name="voice_default_iff_no_owner",
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="voice_owner_list",
                         condition=Q(deleted_at__isnull=True)),
            models.Index(fields=["visibility", "moderation_status"], name="voice_shared_list",
                         condition=Q(deleted_at__isnull=True) & ~Q(visibility="private")),
            models.Index(fields=["sync_deadline"], name="voice_processing", condition=Q(status="processing")),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider}:{self.provider_voice_id})"

    @classmethod
    def shared_state(cls, visibility: str, moderation_status: str) -> bool:
        """Whether a voice in this state is listed for other users too (default, or public and
        approved); the owner's being active is checked by the queries."""
        return visibility == cls.Visibility.DEFAULT or (
            visibility == cls.Visibility.PUBLIC and moderation_status == cls.Moderation.APPROVED
        )

    @property
    def is_shared(self) -> bool:
        return self.shared_state(self.visibility, self.moderation_status)


# The visibilities an owner may choose ("default" belongs to the provider's own voices).
WRITABLE_VISIBILITIES = [Voice.Visibility.PRIVATE.value, Voice.Visibility.PUBLIC.value]


class VoiceSample(models.Model):
    voice = models.ForeignKey(Voice, on_delete=models.CASCADE, related_name="samples")
    file = models.FileField(upload_to="voice-samples/%Y/%m/", blank=True)
    original_name = models.CharField(max_length=255)
    format = models.CharField(max_length=16)
    duration_seconds = models.FloatField()
    # Seconds the quality gate heard as speech; null for samples stored before the gate.
    speech_seconds = models.FloatField(null=True, blank=True)
    size_bytes = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.original_name


class VoiceSlotReservation(models.Model):
    """A clone slot held while the provider call runs (outside any transaction).

    Counted with the owner's live voices under a lock on the user row, so concurrent clones
    cannot pass the per-user cap; expires by itself if the process dies mid-call.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["owner", "expires_at"])]


class VoiceModeration(models.Model):
    """One moderation decision: who, when, what and why (the voice keeps only the latest)."""

    class Decision(models.TextChoices):
        APPROVED = "approved"
        REJECTED = "rejected"
        BLOCKED = "blocked"
        UNBLOCKED = "unblocked"

    voice = models.ForeignKey(Voice, on_delete=models.CASCADE, related_name="moderations")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    note = models.TextField(blank=True)
    moderator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["voice", "-created_at"], name="voice_moderation_history")]

    def __str__(self) -> str:
        return f"{self.decision} by {self.moderator_id} at {self.created_at:%Y-%m-%d %H:%M}"


class VoiceShare(models.Model):
    """The owner lets another account speak with a completed voice (family sharing). `user` is
    the account the email named when the share was made; a share to an email with no account
    grants nothing (and the owner is not told which it was)."""

    voice = models.ForeignKey(Voice, on_delete=models.CASCADE, related_name="shares")
    email = models.EmailField()  # as the owner typed it, lower-cased
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="voice_shares")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["voice", "email"], name="voice_share_unique")]
        indexes = [models.Index(fields=["user"], name="voice_share_user")]

    def __str__(self) -> str:
        return f"{self.voice_id} -> {self.email}"
