from django.contrib import admin, messages

from .models import Voice, VoiceSample
from .services import voice_moderate, voice_preview_render


class VoiceSampleInline(admin.TabularInline):
    model = VoiceSample
    extra = 0
    can_delete = False
    readonly_fields = ("original_name", "format", "duration_seconds", "size_bytes", "file", "created_at")


def _moderate(decision: str, label: str):
    def action(modeladmin, request, queryset):
        changed = voice_moderate(moderator=request.user, voice_ids=list(queryset.values_list("pk", flat=True)),
                                 decision=decision)
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
               "regenerate_preview"]
    # Moderation goes through the actions (one event per change); everything else is read-only.
    readonly_fields = [f.name for f in Voice._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Regenerate preview")
    def regenerate_preview(self, request, queryset):
        from config.api.errors import ServiceError

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
