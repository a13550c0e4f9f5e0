"""Voice moderation in the admin, for superusers and the `Moderators` group (staff whose
permissions cover voices only). Every action goes through a service: the decision is recorded
with who, when and why, the lists that show the voice are invalidated and its owner hears
`voice.moderated`."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Case, IntegerField, Value, When
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from config.api.errors import ServiceError
from tts.admin import player
from tts.models import AudioClip, SpeechJob
from tts.selectors import preview_clip_id

from .models import Voice, VoiceModeration, VoiceSample
from .samples import sample_url
from .services import voice_moderate, voice_preview_render, voice_remove_as_admin
from .sync import BATCH_SIZE, voices_check

RECENT_JOBS = 10


class DeletedFilter(admin.SimpleListFilter):
    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request, model_admin):
        return [("no", "Not deleted"), ("yes", "Deleted")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


class VoiceSampleInline(admin.TabularInline):
    model = VoiceSample
    extra = 0
    can_delete = False
    fields = ("original_name", "format", "duration_seconds", "speech_seconds", "size_bytes", "listen", "created_at")
    readonly_fields = fields

    @admin.display(description="listen")
    def listen(self, sample: VoiceSample) -> str:
        if not sample.file:
            return "-"  # removed with the voice
        return format_html('<audio controls preload="none" src="{}"></audio>', sample_url(sample))


class RejectForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 60}), max_length=2000,
                           help_text="Sent to the owner with the decision.")


def _moderate(modeladmin, request, queryset, decision: str, note: str = "") -> None:
    try:
        changed = voice_moderate(moderator=request.user, voice_ids=list(queryset.values_list("pk", flat=True)),
                                 decision=decision, note=note)
    except ServiceError as exc:
        modeladmin.message_user(request, str(exc.message), messages.ERROR)
        return
    modeladmin.message_user(request, f"{changed} voice(s) {decision}.", messages.SUCCESS)


@admin.register(Voice)
class VoiceAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "status", "moderation_status", "visibility", "category", "provider",
                    "last_checked_at", "created_at")
    list_filter = ("status", "visibility", "moderation_status", "category", "provider", DeletedFilter)
    search_fields = ("name", "owner__email")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    inlines = [VoiceSampleInline]
    actions = ["approve", "reject", "block", "unblock", "regenerate_preview", "recheck_now"]
    # Moderation goes through the actions (one history record and event per change); fields are read-only.
    readonly_fields = [f.name for f in Voice._meta.fields] + ["preview", "recent_jobs", "moderation_history"]

    def get_queryset(self, request):
        # Pending review first, then newest.
        return super().get_queryset(request).annotate(
            review_order=Case(When(moderation_status=Voice.Moderation.PENDING, then=Value(0)), default=Value(1),
                              output_field=IntegerField())).order_by("review_order", "-created_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # The provider's default voices are mirrored, not owned: nothing here deletes them.
        return super().has_delete_permission(request, obj) and (obj is None or obj.owner_id is not None)

    def delete_model(self, request, obj: Voice) -> None:
        voice_remove_as_admin(voice=obj)

    def delete_queryset(self, request, queryset) -> None:
        for voice in queryset.filter(owner__isnull=False, deleted_at__isnull=True):
            voice_remove_as_admin(voice=voice)

    # --- change page ---------------------------------------------------------------------------

    @admin.display(description="preview")
    def preview(self, voice: Voice) -> str:
        clip_id = preview_clip_id(voice_id=voice.pk)
        return player(AudioClip.objects.filter(pk=clip_id).first() if clip_id else None)

    @admin.display(description="recent jobs")
    def recent_jobs(self, voice: Voice) -> str:
        jobs = SpeechJob.objects.filter(voice=voice).order_by("-created_at")[:RECENT_JOBS]
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (job.created_at.strftime("%Y-%m-%d %H:%M"), job.purpose, job.status, job.characters,
             job.error_code or "") for job in jobs))
        return format_html("<table><tr><th>created</th><th>purpose</th><th>status</th><th>characters</th>"
                           "<th>error</th></tr>{}</table>", rows) if jobs else "-"

    @admin.display(description="moderation history")
    def moderation_history(self, voice: Voice) -> str:
        records = VoiceModeration.objects.filter(voice=voice).select_related("moderator")
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (r.created_at.strftime("%Y-%m-%d %H:%M"), r.decision, r.moderator.email if r.moderator else "-", r.note)
            for r in records))
        return format_html("<table><tr><th>when</th><th>decision</th><th>moderator</th><th>note</th></tr>{}"
                           "</table>", rows) if records else "-"

    # --- actions (every one needs the change permission: moderators have it) -------------------

    @admin.action(description="Approve", permissions=["change"])
    def approve(self, request, queryset):
        _moderate(self, request, queryset, VoiceModeration.Decision.APPROVED)

    @admin.action(description="Reject (with a note)", permissions=["change"])
    def reject(self, request, queryset):
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            _moderate(self, request, queryset, VoiceModeration.Decision.REJECTED, form.cleaned_data["note"])
            return None
        return TemplateResponse(request, "admin/voices/voice/reject.html", {
            **self.admin_site.each_context(request), "title": "Reject voices", "form": form, "voices": queryset,
            "opts": self.model._meta, "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        })

    @admin.action(description="Block", permissions=["change"])
    def block(self, request, queryset):
        _moderate(self, request, queryset, VoiceModeration.Decision.BLOCKED)

    @admin.action(description="Unblock", permissions=["change"])
    def unblock(self, request, queryset):
        _moderate(self, request, queryset, VoiceModeration.Decision.UNBLOCKED)

    @admin.action(description="Re-check status with the provider now", permissions=["change"])
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

    @admin.action(description="Regenerate preview", permissions=["change"])
    def regenerate_preview(self, request, queryset):
        queued, skipped = 0, 0
        for voice in queryset:
            try:
                voice_preview_render(voice=voice)
                queued += 1
            except ServiceError:
                skipped += 1  # default voices, and voices not completed
        self.message_user(request, f"{queued} preview(s) queued; {skipped} voice(s) skipped.", messages.SUCCESS)
