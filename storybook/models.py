import uuid

from django.conf import settings
from django.db import models


class Book(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        GENERATING = "generating"
        READY = "ready"
        PARTIAL = "partial"  # settled with some lines failed
        FAILED = "failed"  # settled with every line failed

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="books")
    title = models.CharField(max_length=200)
    description = models.CharField(max_length=1000, blank=True)
    language = models.CharField(max_length=16)
    cover = models.ImageField(upload_to="book-covers/%Y/%m/", blank=True)
    # Null only once the voice's row is gone (its owner's account was deleted): the book's audio
    # stays playable, and narrating again needs a new narrator (409 with the lines).
    narrator_voice = models.ForeignKey("voices.Voice", on_delete=models.SET_NULL, null=True, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    # Bumped in the transaction of every change to the book, its pages, lines or line audio.
    cache_version = models.PositiveIntegerField(default=1)
    idempotency_key = models.CharField(max_length=200, blank=True)
    # The whole-book file (an AudioClip, so it is served signed with Range support), what it was
    # built from (storybook.audio.fingerprint), and its page/line index.
    audio_clip = models.ForeignKey("tts.AudioClip", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    audio_fingerprint = models.CharField(max_length=64, blank=True)
    audio_index = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "-created_at"], name="book_owner_list")]

    def __str__(self) -> str:
        return self.title


class Page(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="pages")
    number = models.PositiveIntegerField()  # 1-based, contiguous within the book
    text = models.TextField(blank=True)
    image = models.ImageField(upload_to="book-pages/%Y/%m/", blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["book", "number"], name="page_number_unique",
                                               deferrable=models.Deferrable.DEFERRED)]

    def __str__(self) -> str:
        return f"page {self.number}"


class Line(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="lines")
    order = models.PositiveIntegerField()  # 1-based, contiguous within the page
    speaker = models.CharField(max_length=100, blank=True)
    text = models.TextField()
    # Null: the book's narrator reads it (also once the voice's row is gone with its owner's account).
    voice = models.ForeignKey("voices.Voice", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # The line's current narration; its status is the line's status.
    speech_job = models.ForeignKey("tts.SpeechJob", on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")

    class Meta:
        ordering = ["order"]
        constraints = [models.UniqueConstraint(fields=["page", "order"], name="line_order_unique",
                                               deferrable=models.Deferrable.DEFERRED)]

    def __str__(self) -> str:
        return self.text[:40]


class GenerationBatch(models.Model):
    class Kind(models.TextChoices):
        INITIAL = "initial"
        RETRY = "retry"
        EDIT = "edit"  # lines requeued by an edit (text, voice, narrator)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="batches")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    jobs = models.ManyToManyField("tts.SpeechJob", related_name="+")
    total = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]


class BookExport(models.Model):
    """One built export file of a book: what it was built from (`fingerprint`: the book's text,
    pictures, owner's name and loudness-matched audio) and where it is. A build replaces the
    book's older files."""

    class Kind(models.TextChoices):
        VTT = "vtt"
        EPUB = "epub"
        M4B = "m4b"
        BUNDLE = "bundle"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="exports")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    page = models.PositiveIntegerField(default=0)  # a page's read-along (vtt); 0 = the whole book
    fingerprint = models.CharField(max_length=64)
    file = models.FileField(upload_to="book-exports/", max_length=200)
    mime_type = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["book", "kind", "page", "fingerprint"], name="book_export_unique")]

    def __str__(self) -> str:
        return f"{self.kind} of {self.book_id}" + (f" page {self.page}" if self.page else "")
