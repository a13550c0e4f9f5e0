"""Reading books: the owner's list and a book's detail, each cached under the owner's
`cache_version` (bumped in the transaction of every change, a line's job finishing included),
so a hit costs no query beyond the token lookup and a read after a write is never stale.

Cached values hold signed paths: they stay valid far longer than the cache keeps them, and each
read makes them absolute for its own host."""

from uuid import UUID

from django.conf import settings
from django.db.models import Count, Prefetch, Q

from config.api.cache import CachedPart, get_or_build, versioned_key
from config.api.errors import BookNotFound
from tts.audio_urls import clip_url
from tts.models import SpeechJob

from .images import image_url
from .models import Book, GenerationBatch, Line, Page


def book_list_key(user) -> str:
    return versioned_key(f"storybook:books:{user.pk}", user.cache_version)


def book_detail_key(user, book_id: UUID) -> str:
    # The reader is part of the key: another user's request for this id caches nothing here.
    return versioned_key(f"storybook:book:{book_id}:{user.pk}", user.cache_version)


def _progress_counts():
    return {
        "lines_total": Count("pages__lines", distinct=True),
        "lines_done": Count("pages__lines", filter=Q(pages__lines__speech_job__status=SpeechJob.Status.SUCCEEDED),
                            distinct=True),
        "lines_failed": Count("pages__lines", filter=Q(pages__lines__speech_job__status=SpeechJob.Status.FAILED),
                              distinct=True),
        "page_count": Count("pages", distinct=True),
    }


def _list_item(book: Book) -> dict:
    return {
        "id": str(book.pk), "title": book.title, "description": book.description, "language": book.language,
        "status": book.status,
        "progress": {"done": book.lines_done, "failed": book.lines_failed, "total": book.lines_total},
        "narrator_voice_id": str(book.narrator_voice_id) if book.narrator_voice_id else None,
        "page_count": book.page_count, "cover": book.cover.name or None,
        "created_at": book.created_at.isoformat(), "updated_at": book.updated_at.isoformat(),
    }


def book_list(*, user) -> list[dict]:
    """The owner's books, newest first (cached as a whole; pages are sliced from it)."""
    def build() -> list[dict]:
        books = Book.objects.filter(owner=user).annotate(**_progress_counts()).order_by("-created_at")
        return [_list_item(book) for book in books]

    return get_or_build(CachedPart(book_list_key(user), settings.STORYBOOK_LIST_CACHE_TTL, build))


def _line(line: Line) -> dict:
    job = line.speech_job
    clip = job.clip if job is not None and job.status == SpeechJob.Status.SUCCEEDED else None
    return {
        "id": str(line.pk), "order": line.order, "speaker": line.speaker, "text": line.text,
        "voice_id": str(line.voice_id) if line.voice_id else None,
        "status": job.status if job is not None else SpeechJob.Status.QUEUED,
        # A signed path (valid for TTS_AUDIO_URL_TTL_SECONDS, far longer than the cache keeps it):
        # signing 48 lines on every read would cost more than the rest of a cache hit.
        "audio_path": clip_url(clip_id=clip.pk)[0] if clip is not None else None,
        "duration_ms": clip.duration_ms if clip is not None else None,
        "words": clip.words if clip is not None else [],
        "error": ({"code": job.error_code, "message": job.error_message}
                  if job is not None and job.status == SpeechJob.Status.FAILED else None),
    }


def _build_detail(user, book_id: UUID) -> dict | None:
    lines = Line.objects.select_related("speech_job__clip").order_by("order")
    book = (Book.objects.filter(pk=book_id, owner=user)
            .prefetch_related(Prefetch("pages", queryset=Page.objects.order_by("number").prefetch_related(
                Prefetch("lines", queryset=lines))), Prefetch("batches", queryset=GenerationBatch.objects.order_by("created_at")))
            .first())
    if book is None:
        return None
    pages = [{"id": str(page.pk), "number": page.number, "text": page.text, "image": page.image.name or None,
              "lines": [_line(line) for line in page.lines.all()]} for page in book.pages.all()]
    statuses = [line["status"] for page in pages for line in page["lines"]]
    return {
        "owner_id": str(book.owner_id),
        "id": str(book.pk), "title": book.title, "description": book.description, "language": book.language,
        "status": book.status,
        "progress": {"done": statuses.count(SpeechJob.Status.SUCCEEDED), "failed": statuses.count(SpeechJob.Status.FAILED),
                     "total": len(statuses)},
        "narrator_voice_id": str(book.narrator_voice_id) if book.narrator_voice_id else None,
        "cover": book.cover.name or None, "pages": pages,
        "batches": [{"id": str(b.pk), "kind": b.kind, "total": b.total, "succeeded": b.succeeded, "failed": b.failed,
                     "cancelled": b.cancelled, "created_at": b.created_at.isoformat(),
                     "finished_at": b.finished_at.isoformat() if b.finished_at else None} for b in book.batches.all()],
        "created_at": book.created_at.isoformat(), "updated_at": book.updated_at.isoformat(),
    }


def book_detail(*, user, book_id: UUID) -> dict:
    """The cached detail of one of the caller's books (404 `book_not_found` otherwise). The
    owner is checked again on a hit: the key names the book, not who may read it."""
    cached = get_or_build(CachedPart(book_detail_key(user, book_id), settings.STORYBOOK_DETAIL_CACHE_TTL,
                                     lambda: _build_detail(user, book_id)))
    if cached is None or cached.get("owner_id") != str(user.pk):
        raise BookNotFound()  # (None is never stored: a miss stays a miss)
    return cached


def render_book(detail: dict, *, request) -> dict:
    """The API shape: signed, expiring audio URLs in place of clip ids."""
    def line(item: dict) -> dict:
        out = {k: v for k, v in item.items() if k != "audio_path"}
        out["audio_url"] = request.build_absolute_uri(item["audio_path"]) if item["audio_path"] else None
        return out

    body = {k: v for k, v in detail.items() if k not in ("owner_id", "cover", "pages")}
    body["cover_url"] = image_url(request=request, name=detail["cover"])
    body["pages"] = [{**{k: v for k, v in page.items() if k not in ("image", "lines")},
                      "image_url": image_url(request=request, name=page["image"]),
                      "lines": [line(item) for item in page["lines"]]} for page in detail["pages"]]
    return body


def render_list_item(item: dict, *, request) -> dict:
    return {**{k: v for k, v in item.items() if k != "cover"}, "cover_url": image_url(request=request, name=item["cover"])}


def book_check_owned(*, user, book_id: UUID, page_id: UUID | None = None) -> None:
    """404 unless the caller owns the book (and the page is in it). Views ask this before judging
    a request's body, so another user's id answers as a missing one would, whatever the body."""
    books = Book.objects.filter(pk=book_id, owner=user)
    if not books.exists():
        raise BookNotFound()
    if page_id is not None and not Page.objects.filter(pk=page_id, book_id=book_id).exists():
        raise BookNotFound("No such page in this book.")
