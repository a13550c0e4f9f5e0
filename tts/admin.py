from django.contrib import admin, messages
from django.utils.html import format_html

from .audio_urls import clip_url
from .models import AudioClip, SpeechJob
from .services import speech_jobs_cancel_queued, speech_jobs_retry


def player(clip: AudioClip | None) -> str:
    if clip is None:
        return "-"
    url, _ = clip_url(clip_id=clip.pk)
    return format_html('<audio controls preload="none" src="{}"></audio>', url)


@admin.register(SpeechJob)
class SpeechJobAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "purpose", "status", "provider", "characters", "provider_calls", "error_code",
                    "created_at", "finished_at")
    list_filter = ("status", "purpose", "provider", "error_code")
    search_fields = ("owner__email", "id", "provider_voice_id")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    actions = ["retry", "cancel"]
    readonly_fields = [f.name for f in SpeechJob._meta.fields] + ["audio"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="audio")
    def audio(self, job: SpeechJob) -> str:
        return player(job.clip)

    @admin.action(description="Retry (failed or cancelled jobs)")
    def retry(self, request, queryset):
        # A book's lines are retried with the book (its status and batches follow them).
        requeued, refused = speech_jobs_retry(job_ids=list(queryset.exclude(purpose="story_line")
                                                           .values_list("pk", flat=True)))
        self.message_user(request, f"{requeued} job(s) queued again.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"{refused} job(s) not retried: their owner's quota is used up.",
                              messages.WARNING)

    @admin.action(description="Cancel (queued jobs)")
    def cancel(self, request, queryset):
        cancelled = speech_jobs_cancel_queued(job_ids=list(queryset.exclude(purpose="story_line")
                                                           .values_list("pk", flat=True)))
        self.message_user(request, f"{cancelled} job(s) cancelled.", messages.SUCCESS)


@admin.register(AudioClip)
class AudioClipAdmin(admin.ModelAdmin):
    list_display = ("content_hash", "provider", "output_format", "duration_ms", "size_bytes", "created_at", "audio")
    list_filter = ("provider", "output_format")
    search_fields = ("content_hash", "provider_voice_id")
    readonly_fields = [f.name for f in AudioClip._meta.fields] + ["audio"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="audio")
    def audio(self, clip: AudioClip) -> str:
        return player(clip)
