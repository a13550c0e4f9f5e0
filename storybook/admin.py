from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from config.api.errors import ServiceError
from tts.admin import player

from .models import Book, BookExport, GenerationBatch, Line, Page
from .services import book_retry


class PageInline(admin.TabularInline):
    model = Page
    extra = 0
    can_delete = False
    fields = ("number", "text", "image")
    readonly_fields = fields


class BatchInline(admin.TabularInline):
    model = GenerationBatch
    extra = 0
    can_delete = False
    fields = ("kind", "total", "succeeded", "failed", "cancelled", "created_at", "finished_at")
    readonly_fields = fields


class ExportInline(admin.TabularInline):
    """The book's current export files (built on the tts cluster; fetched by the owner's API)."""
    model = BookExport
    extra = 0
    can_delete = False
    fields = ("kind", "page", "size_bytes", "fingerprint", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Book)
class BookAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "status", "language", "created_at", "updated_at")
    list_filter = ("status", "language")
    search_fields = ("title", "owner__email")
    list_select_related = ("owner",)
    inlines = [PageInline, BatchInline, ExportInline]
    readonly_fields = [f.name for f in Book._meta.fields] + ["narration"]
    actions = ["retry"]

    def has_add_permission(self, request) -> bool:
        return False  # books are written through the API (quota, voices, narration jobs)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deleting must cancel the lines and remove the files: the owner's API does

    @admin.display(description="lines")
    def narration(self, book: Book) -> str:
        """Every line in reading order, with its status and a player for its audio."""
        lines = (Line.objects.filter(page__book=book).select_related("page", "speech_job__clip")
                 .order_by("page__number", "order"))
        rows = format_html_join(
            "", "<tr><td>{}.{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((line.page.number, line.order, line.speaker, line.text[:200],
              line.speech_job.status if line.speech_job else "-",
              player(line.speech_job.clip if line.speech_job else None)) for line in lines))
        return format_html("<table><tr><th>line</th><th>speaker</th><th>text</th><th>status</th><th>audio</th></tr>"
                           "{}</table>", rows)

    @admin.action(description="Retry failed lines")
    def retry(self, request, queryset):
        retried, refused = 0, []
        for book in queryset:
            try:
                book_retry(user=book.owner, book_id=book.pk)
                retried += 1
            except ServiceError as exc:
                refused.append(f"{book.title}: {exc.message}")
        self.message_user(request, f"{retried} book(s) retried.", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)
