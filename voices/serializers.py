from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api import fields

from .models import WRITABLE_VISIBILITIES, Voice, VoiceSample, VoiceShare


class VoiceSampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = VoiceSample
        fields = ["original_name", "format", "duration_seconds", "speech_seconds", "size_bytes"]
        read_only_fields = fields


class VoiceOutputSerializer(serializers.ModelSerializer):
    is_mine = serializers.SerializerMethodField()
    shared_with_me = serializers.SerializerMethodField(
        help_text="Another account shared this voice with you: you may speak with it, not change it.")
    available = serializers.SerializerMethodField(help_text="False when the voice's provider is not configured here.")

    class Meta:
        model = Voice
        fields = [
            "id", "name", "description", "language", "gender", "category", "visibility", "status",
            "failure_reason", "moderation_status", "provider", "is_mine", "shared_with_me", "available", "created_at",
            "completed_at",
        ]
        read_only_fields = fields

    def get_is_mine(self, voice: Voice) -> bool:
        return voice.owner_id is not None and voice.owner_id == self.context["user"].pk

    def get_shared_with_me(self, voice: Voice) -> bool:
        if self.get_is_mine(voice):
            return False
        if "_shared_ids" not in self.context:  # once per answer, not per row
            self.context["_shared_ids"] = set(
                VoiceShare.objects.filter(user=self.context["user"]).values_list("voice_id", flat=True))
        return voice.pk in self.context["_shared_ids"]

    def get_available(self, voice: Voice) -> bool:
        from tts.providers import is_configured

        return is_configured(voice.provider)


class VoiceDetailSerializer(VoiceOutputSerializer):
    """Samples and moderation notes are the owner's business; others see them empty."""

    samples = serializers.SerializerMethodField()
    moderation_note = serializers.SerializerMethodField()
    preview_url = serializers.SerializerMethodField(help_text="Signed, expiring URL of the latest preview clip.")

    class Meta(VoiceOutputSerializer.Meta):
        fields = [*VoiceOutputSerializer.Meta.fields, "moderation_note", "samples", "usage_count", "preview_url",
                  "updated_at"]
        read_only_fields = fields

    def get_preview_url(self, voice: Voice) -> str | None:
        from tts.audio_urls import clip_url
        from tts.selectors import preview_clip_id

        clip_id = preview_clip_id(voice_id=voice.pk)
        return clip_url(request=self.context.get("request"), clip_id=clip_id)[0] if clip_id else None

    def get_moderation_note(self, voice: Voice) -> str:
        return voice.moderation_note if self.get_is_mine(voice) else ""

    @extend_schema_field(VoiceSampleSerializer(many=True))
    def get_samples(self, voice: Voice) -> list:
        return VoiceSampleSerializer(voice.samples.all(), many=True).data if self.get_is_mine(voice) else []


class _CachedItemSerializer(VoiceOutputSerializer):
    class Meta(VoiceOutputSerializer.Meta):
        fields = [f for f in VoiceOutputSerializer.Meta.fields if f not in ("is_mine", "shared_with_me", "available")]
        read_only_fields = fields


def render_voice_items(voices: list[Voice], mine: bool) -> list[dict]:
    """Cached list items: `is_mine` is fixed by the cached part they are in (the user's part marks
    the voices shared with them); `available` depends on this process's settings and is added per
    request."""
    return [{**row, "is_mine": mine, "shared_with_me": False} for row in _CachedItemSerializer(voices, many=True).data]


class VoiceCloneInputSerializer(serializers.Serializer):
    name = fields.CharField(max_length=100)
    samples = serializers.ListField(child=serializers.FileField(allow_empty_file=True), allow_empty=False,
                                    min_length=1, max_length=settings.VOICE_SAMPLE_MAX_COUNT)
    language = fields.CharField(max_length=16, required=False, allow_blank=True, default="")
    gender = serializers.ChoiceField(choices=["female", "male", "neutral", ""], required=False, default="")
    description = fields.CharField(max_length=500, required=False, allow_blank=True, default="")
    visibility = serializers.ChoiceField(choices=WRITABLE_VISIBILITIES, required=False, default="private")
    consent = serializers.BooleanField(
        help_text="The uploader attests that the speaker consented to having their voice cloned."
    )
    remove_background_noise = serializers.BooleanField(
        required=False, default=False,
        help_text="Ask the provider to isolate the voice from background noise (it can make clean samples worse).")


class CloneWarningSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=["little_speech", "background_noise"])
    message = fields.CharField()
    speech_seconds = fields.FloatField(required=False, help_text="little_speech: speech heard in all the samples.")
    recommended_seconds = fields.FloatField(required=False, help_text="little_speech: the least we advise.")
    files = serializers.ListField(child=fields.CharField(), required=False,
                                  help_text="background_noise: the samples it was heard in.")


class VoiceCloneOutputSerializer(VoiceDetailSerializer):
    """The clone's 202: the new voice, and what passed the quality gate with a caveat."""

    warnings = CloneWarningSerializer(many=True, read_only=True)

    class Meta(VoiceDetailSerializer.Meta):
        fields = [*VoiceDetailSerializer.Meta.fields, "warnings"]
        read_only_fields = fields


class VoiceUpdateInputSerializer(serializers.Serializer):
    name = fields.CharField(max_length=100, required=False)
    description = fields.CharField(max_length=500, required=False, allow_blank=True)
    visibility = serializers.ChoiceField(choices=WRITABLE_VISIBILITIES, required=False)


class VoiceSettingsSerializer(serializers.Serializer):
    stability = fields.FloatField(min_value=0, max_value=1, required=False)
    similarity_boost = fields.FloatField(min_value=0, max_value=1, required=False)
    style = fields.FloatField(min_value=0, max_value=1, required=False)
    use_speaker_boost = fields.BooleanField(required=False)
    speed = fields.FloatField(min_value=0.7, max_value=1.2, required=False)


class GenerateInputSerializer(serializers.Serializer):
    voice_id = serializers.UUIDField()
    text = fields.CharField(max_length=settings.TTS_TEXT_MAX_CHARACTERS)
    model_id = fields.CharField(max_length=64, required=False, default="")
    language = fields.CharField(max_length=16, required=False, allow_blank=True, default="")
    output_format = fields.CharField(max_length=32, required=False, default="mp3_44100_128")
    voice_settings = VoiceSettingsSerializer(required=False)
    previous_text = fields.CharField(max_length=1000, required=False, allow_blank=True, default="")
    next_text = fields.CharField(max_length=1000, required=False, allow_blank=True, default="")


class VoiceShareInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254, help_text="The account to share with (the other parent, a grandparent).")


class VoiceShareSerializer(serializers.ModelSerializer):
    class Meta:
        model = VoiceShare
        fields = ["id", "email", "created_at"]
        read_only_fields = fields
