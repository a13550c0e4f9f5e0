from django.contrib import admin, messages

from config.api.errors import ServiceError

from .models import Voice, VoiceSample
from .services import voice_moderate, voice_preview_render
from .sync import BATCH_SIZE, voices_check


class VoiceSampleInline(admin.TabularInline):
    model = VoiceSample
    extra = 0
    can_delete = False
    readonly_fields = ("original_name", "format", "duration_seconds", "size_bytes", "file", "created_at")


def _moderate(decision: str, label: str):
    def action(modeladmin, request, queryset):
        try:
            changed = voice_moderate(moderator=request.user, voice_ids=list(queryset.values_list("pk", flat=True)),
                                     decision=decision)
        except ServiceError as exc:
            modeladmin.message_user(request, str(exc.message), messages.ERROR)
            return
        modeladmin.message_user(request, f"{changed} voice(s) {label}.", messages.SUCCESS)

    action.__name__ = f"moderate_{decision}"
    action.short_description = f"Moderation: {label}"
    return action


@admin.register(Voice)
class VoiceAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "provider", "visibility", "status", "moderation_status", "created_at", "deleted_at")
    list_filter = ("moderation_status", "visibility", "status", "provider", "category")
    search_fields = ("name", "owner__email", "provider_voice_id")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    inlines = [VoiceSampleInline]
    actions = [_moderate("approved", "approve"), _moderate("rejected", "reject"), _moderate("blocked", "block"),
               "regenerate_preview", "recheck_now"]
    # Moderation goes through the actions (one event per change); everything else is read-only.
    readonly_fields = [f.name for f in Voice._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Re-check status with the provider now")
    def recheck_now(self, request, queryset):
        if queryset.count() > BATCH_SIZE:  # provider calls run in this request: one batch at most
            self.message_user(request, f"Select at most {BATCH_SIZE} voices to re-check at once.", messages.ERROR)
            return
        result = voices_check(voices=list(queryset))
        self.message_user(
            request,
            f"{result.checked} voice(s) checked: {len(result.completed)} completed, {len(result.failed)} failed, "
            f"{result.skipped} skipped (provider not configured here or not answering).",
            messages.WARNING if result.provider_errors else messages.SUCCESS)

    @admin.action(description="Regenerate preview")
    def regenerate_preview(self, request, queryset):
        queued, skipped = 0, 0
        for voice in queryset:
            try:
                voice_preview_render(voice=voice)
                queued += 1
            except ServiceError:
                skipped += 1  # default voices, and voices not completed
        self.message_user(request, f"{queued} preview(s) queued; {skipped} voice(s) skipped.", messages.SUCCESS)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deleting must also delete the provider voice: use the API or account cleanup
