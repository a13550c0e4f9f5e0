"""Building and finding a book's exports. A ready book's exports are built on the tts cluster
right after its whole-book audio (and again whenever what they are made of changes); a request
for one that is not built yet queues that build once and answers "building"."""

import hashlib
import json
import time
from collections.abc import Callable
from uuid import UUID

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from config.api.errors import BookNotFound, BookNotReady

from .. import builds
from .. import services as books
from ..models import Book, BookExport, Line, Page
from .bundle import build_bundle
from .epub import build_epub
from .m4b import build_m4b
from .snapshot import BookSnapshot, LineSnapshot, PageSnapshot, word_timings
from .vtt import build_vtt

# Bumped when a builder's output changes, so books get new files on their next request.
EXPORTS_VERSION = 1
# kind -> (media type, file extension)
FILE_TYPES = {
    BookExport.Kind.VTT: ("text/vtt; charset=utf-8", "vtt"),
    BookExport.Kind.EPUB: ("application/epub+zip", "epub"),
    BookExport.Kind.M4B: ("audio/mp4", "m4b"),
    BookExport.Kind.BUNDLE: ("application/zip", "zip"),
}


def _author(book: Book) -> str:
    # The display name only: the email (or part of it) never goes into a file meant for sharing.
    return book.owner.display_name


def _pages(book: Book) -> list[Page]:
    return list(Page.objects.filter(book=book).order_by("number"))


def _fingerprint(book: Book, pages: list[Page], lines: list[Line]) -> str:
    """Everything an export shows or plays: equal fingerprints, equal files."""
    canonical = json.dumps({
        "v": EXPORTS_VERSION, "audio": books.book_audio_fingerprint(lines=lines), "title": book.title,
        "description": book.description, "language": book.language, "author": _author(book),
        "cover": book.cover.name or "", "pages": [[p.number, p.text, p.image.name or ""] for p in pages],
        "lines": [[str(line.pk), line.page.number, line.order, line.speaker, line.text, _voice_name(line, book)]
                  for line in lines],
    }, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _voice_name(line: Line, book: Book) -> str:
    voice = line.voice or book.narrator_voice
    return voice.name if voice is not None else ""


def book_snapshot(*, book: Book) -> BookSnapshot | None:
    """The book as its exports show it, or None when its whole-book audio is not the current one."""
    pages, lines = _pages(book), books.book_playable_lines(book=book)
    if not lines or book.audio_clip_id is None or book.audio_fingerprint != books.book_audio_fingerprint(lines=lines):
        return None
    placed = {line["line_id"]: line for page in book.audio_index for line in page["lines"]}
    by_page: dict[UUID, list[LineSnapshot]] = {}
    for line in lines:
        matched = books.line_audio_matched(line=line)
        where = placed[str(line.pk)]
        by_page.setdefault(line.page_id, []).append(LineSnapshot(
            id=str(line.pk), order=line.order, speaker=line.speaker, text=line.text,
            words=word_timings(line.text, matched.words, matched.duration_ms), audio_name=matched.file.name,
            duration_ms=matched.duration_ms, start_ms=where["start_ms"], end_ms=where["end_ms"],
            loudness_lufs=matched.loudness_lufs, true_peak_dbtp=matched.true_peak_dbtp,
            source_loudness_lufs=line.speech_job.clip.loudness_lufs, voice_name=_voice_name(line, book)))
    page_snapshots, clock = [], 0
    for page in pages:
        own = tuple(by_page.get(page.pk, ()))
        start = own[0].start_ms if own else clock
        clock = own[-1].end_ms if own else clock
        page_snapshots.append(PageSnapshot(id=str(page.pk), number=page.number, text=page.text,
                                           image_name=page.image.name or None, start_ms=start, end_ms=clock,
                                           lines=own))
    return BookSnapshot(
        id=str(book.pk), title=book.title, description=book.description, language=book.language,
        author=_author(book), cover_name=book.cover.name or None, pages=tuple(page_snapshots),
        audio_name=book.audio_clip.file.name, audio_duration_ms=book.audio_clip.duration_ms,
        loudness_target_lufs=settings.STORYBOOK_LOUDNESS_LUFS, true_peak_limit_dbtp=settings.STORYBOOK_TRUE_PEAK_DBTP,
        fingerprint=_fingerprint(book, pages, lines), modified=book.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"))


# Built in this order: the read-along is ready first, the biggest files last.
KINDS = (BookExport.Kind.VTT, BookExport.Kind.BUNDLE, BookExport.Kind.M4B, BookExport.Kind.EPUB)


def _files(snapshot: BookSnapshot, kind: str) -> list[tuple[int, Callable[[], bytes]]]:
    """(page, build) for each file of one kind: the read-along whole and per page, the rest whole."""
    if kind == BookExport.Kind.VTT:
        return [(0, lambda: build_vtt(snapshot).encode()),
                *((p.number, lambda n=p.number: build_vtt(snapshot, page=n).encode()) for p in snapshot.pages)]
    build = {BookExport.Kind.EPUB: build_epub, BookExport.Kind.M4B: build_m4b,
             BookExport.Kind.BUNDLE: build_bundle}[kind]
    return [(0, lambda: build(snapshot))]


def book_files_build(*, book_id: UUID) -> str:
    """On the tts cluster: the book's loudness-matched lines, its whole-book audio, then each
    export, in steps; a run past its time budget stops between steps and the next run goes on
    where it stopped (every step's result is kept). Returns what happened."""
    if not builds.book_files_claim(book_id=book_id):
        return "busy: another run holds this book (it goes round again when it ends)"
    try:
        return _build(book_id, deadline=time.monotonic() + settings.STORYBOOK_BUILD_STEP_BUDGET_SECONDS)
    finally:
        builds.book_files_release(book_id=book_id)


def _continue_later(book_id: UUID, done: str) -> str:
    builds.book_files_again(book_id=book_id)
    return f"{done}; continuing in the next run"


def _build(book_id: UUID, *, deadline: float) -> str:
    book = Book.objects.filter(pk=book_id).first()
    if book is None:
        return "gone"
    # A run that stops early has done some work: only new work counts against the budget.
    pending = books.line_audio_unmatched(lines=books.book_playable_lines(book=book))
    for count, line in enumerate(pending, start=1):
        books.line_audio_matched(line=line)
        if time.monotonic() > deadline and count < len(pending):
            return _continue_later(book_id, f"{count} of {len(pending)} lines matched")
    audio = books.book_audio_build(book_id=book_id)
    if audio not in ("built", "current"):
        return f"audio: {audio}"
    book = Book.objects.select_related("owner", "narrator_voice", "audio_clip").filter(pk=book_id).first()
    if book is None or book.status != Book.Status.READY:
        return f"audio: {audio}; exports wait for a ready book"
    snapshot = book_snapshot(book=book)
    if snapshot is None:
        return f"audio: {audio}; overtaken"
    done, worked = [], bool(pending) or audio == "built"
    for kind in KINDS:
        if worked and time.monotonic() > deadline:
            return _continue_later(book_id, f"audio: {audio}; exports: {', '.join(done) or 'none yet'}")
        builds.book_files_renew(book_id=book_id)
        outcome = _build_kind(book, snapshot, kind)
        if outcome == "overtaken":
            return f"audio: {audio}; exports overtaken by a change"
        done.append(f"{kind} {outcome}")
        worked = worked or outcome == "built"
    return f"audio: {audio}; exports: {', '.join(done)}"


def _build_kind(book: Book, snapshot: BookSnapshot, kind: str) -> str:
    """One kind's files for `snapshot`, replacing that kind's older files; nothing is kept when
    the book changed meanwhile."""
    files = _files(snapshot, kind)
    if BookExport.objects.filter(book=book, kind=kind, fingerprint=snapshot.fingerprint).count() == len(files):
        return "current"
    mime, extension = FILE_TYPES[kind]
    stored: list[BookExport] = []
    try:
        for page, build in files:
            data = build()
            stem = f"page-{page:03d}" if page else "book"
            name = default_storage.save(f"book-exports/{book.pk}/{snapshot.fingerprint[:16]}/{stem}.{extension}",
                                        ContentFile(data))
            stored.append(BookExport(book=book, kind=kind, page=page, fingerprint=snapshot.fingerprint, file=name,
                                     mime_type=mime, size_bytes=len(data)))
        with transaction.atomic():
            locked = Book.objects.select_for_update(of=("self",)).select_related("owner").filter(pk=book.pk).first()
            if locked is None or _fingerprint(locked, _pages(locked), books.book_playable_lines(book=locked)) != \
                    snapshot.fingerprint:
                raise _Discard("overtaken")
            older = BookExport.objects.filter(book=book, kind=kind)
            if older.filter(fingerprint=snapshot.fingerprint).exists():
                raise _Discard("current")  # another run stored them first
            names = list(older.values_list("file", flat=True))
            older.delete()
            BookExport.objects.bulk_create(stored)
            transaction.on_commit(lambda: [default_storage.delete(name) for name in names], robust=True)
    except _Discard as outcome:
        _delete_files(stored)
        return str(outcome)
    except BaseException:
        _delete_files(stored)
        raise
    return "built"


class _Discard(Exception):
    """A finished build whose files are not wanted (a change overtook it, or another run won)."""


def _delete_files(exports: list[BookExport]) -> None:
    for export in exports:
        default_storage.delete(export.file.name)


def book_export_get(*, user, book_id: UUID, kind: str, page: int = 0) -> BookExport | None:
    """The current export of one of the caller's books, or None while it is built (queued here
    once when it is missing). 404 for another user's book or a missing page; 409
    `book_not_ready` for a book whose lines are not all narrated."""
    book = Book.objects.select_related("owner").filter(pk=book_id, owner=user).first()
    if book is None:
        raise BookNotFound()
    pages = _pages(book)
    if page and not any(p.number == page for p in pages):
        raise BookNotFound("No such page in this book.")
    if book.status == Book.Status.GENERATING:
        return None  # built once the lines settle
    if book.status == Book.Status.DRAFT:
        raise BookNotReady("This book has no lines to narrate yet.", details={"status": book.status})
    if book.status != Book.Status.READY:
        raise BookNotReady(details={"status": book.status})
    fingerprint = _fingerprint(book, pages, books.book_playable_lines(book=book))
    export = BookExport.objects.filter(book=book, kind=kind, page=page, fingerprint=fingerprint).first()
    if export is not None:
        return export
    builds.book_files_queue(book_id=book.pk)
    return None
