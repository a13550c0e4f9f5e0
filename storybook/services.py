"""Storybooks: create a book with its pages and dialogue lines, narrate every line through the
speech engine, follow the lines to the book's status, retry failed lines as a new batch, edit
and requeue only what changed.

A line's status is its current speech job's status. Each change to a book bumps its
`cache_version` and its owner's (the list and detail caches), in the change's transaction.
"""

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from accounts.cache import bump_user_cache_version
from accounts.events import notify_user
from config.api.errors import BookNotFound, ValidationFailed, VoiceNotFound, VoiceNotReady, VoiceBlocked
from tts.models import AudioClip, SpeechJob
from tts.quota import quota_reserve
from tts.services import speech_job_create, speech_jobs_cancel_queued, speech_jobs_wake
from voices.models import Voice
from voices.selectors import voice_get_usable
from voices.services import voice_speech_inputs

from tts.services import clip_loudness_matched, clip_loudness_rendition

from .builds import book_files_queue
from .images import UploadedImage, book_images_folder, image_store, image_validate
from .audio import BOOK_AUDIO_FOLDER, FORMAT as AUDIO_FORMAT
from .audio import Segment
from .audio import fingerprint as audio_fingerprint
from .audio import render as audio_render
from .models import Book, GenerationBatch, Line, Page

logger = logging.getLogger(__name__)

OUTPUT_FORMAT = "mp3_44100_128"
OPEN = (SpeechJob.Status.QUEUED, SpeechJob.Status.RUNNING)
# Lines a retry narrates again: those without audio.
RETRYABLE = (SpeechJob.Status.FAILED, SpeechJob.Status.CANCELLED)


@dataclass(frozen=True)
class LineInput:
    text: str
    speaker: str = ""
    voice_id: UUID | None = None


@dataclass(frozen=True)
class PageInput:
    lines: Sequence[LineInput]
    text: str = ""


# --- shared steps ----------------------------------------------------------------------------------

def _touch(book: Book) -> None:
    """Invalidate the book's detail and its owner's list (in the caller's transaction)."""
    Book.objects.filter(pk=book.pk).update(cache_version=F("cache_version") + 1, updated_at=timezone.now())
    bump_user_cache_version([book.owner_id])


def _check_limits(pages: Sequence[PageInput]) -> None:
    lines = [line for page in pages for line in page.lines]
    characters = sum(len(line.text) for line in lines)
    problems = {}
    if not pages:
        problems["pages"] = ["A book needs at least one page."]
    elif len(pages) > settings.STORYBOOK_MAX_PAGES:
        problems["pages"] = [f"At most {settings.STORYBOOK_MAX_PAGES} pages."]
    if any(len(page.lines) > settings.STORYBOOK_MAX_LINES_PER_PAGE for page in pages):
        problems["lines"] = [f"At most {settings.STORYBOOK_MAX_LINES_PER_PAGE} lines per page."]
    if characters > settings.STORYBOOK_MAX_CHARACTERS:
        problems["characters"] = [f"The lines hold {characters} characters; at most {settings.STORYBOOK_MAX_CHARACTERS}."]
    if problems:
        raise ValidationFailed(details={"fields": problems, "limits": {
            "pages": settings.STORYBOOK_MAX_PAGES, "lines_per_page": settings.STORYBOOK_MAX_LINES_PER_PAGE,
            "characters": settings.STORYBOOK_MAX_CHARACTERS}})


class _Voices:
    """Usable voices by id, each looked up once (404 / 409 as `voice_get_usable` answers)."""

    def __init__(self, user) -> None:
        self.user = user
        self._found: dict[UUID, Voice] = {}

    def get(self, voice_id: UUID) -> Voice:
        if voice_id not in self._found:
            self._found[voice_id] = voice_get_usable(user=self.user, voice_id=voice_id)
        return self._found[voice_id]


def _reading_order(book: Book) -> list[Line]:
    return list(Line.objects.filter(page__book=book).select_related("page", "voice", "speech_job__clip")
                .order_by("page__number", "order"))


def _queue(book: Book, lines: Sequence[Line], *, kind: str, voices: _Voices) -> GenerationBatch:
    """A batch narrating `lines` (in the caller's transaction): their characters reserved at
    once (429 `quota_exceeded`), one story-line job each, neighbouring lines as context. A
    line whose voice can no longer be used is 409, with every such line in `details`."""
    order = _reading_order(book)
    position = {line.pk: i for i, line in enumerate(order)}
    unusable, inputs = [], {}
    for line in lines:
        voice_id = line.voice_id or book.narrator_voice_id
        try:
            if voice_id is None:
                raise VoiceNotFound()
            voice = voices.get(voice_id)
        except (VoiceNotFound, VoiceNotReady, VoiceBlocked):
            unusable.append(str(line.pk))
            continue
        inputs[line.pk] = voice_speech_inputs(voice=voice, text=line.text, language=book.language,
                                              output_format=OUTPUT_FORMAT)
    if unusable:
        raise VoiceNotReady("Some lines' voices can no longer be used; choose other voices for them.",
                            details={"line_ids": unusable})
    characters = sum(len(line.text) for line in order)
    if characters > settings.STORYBOOK_MAX_CHARACTERS:
        raise ValidationFailed(f"The book would hold {characters} characters; at most {settings.STORYBOOK_MAX_CHARACTERS}.",
                               details={"limits": {"characters": settings.STORYBOOK_MAX_CHARACTERS}})
    month = quota_reserve(user=book.owner, characters=sum(len(line.text) for line in lines))
    batch = GenerationBatch.objects.create(book=book, kind=kind, total=len(lines))
    jobs = []
    for line in lines:
        i = position[line.pk]
        job = speech_job_create(
            owner=book.owner, purpose=SpeechJob.Purpose.STORY_LINE, reserved_in=month, wake=False,
            previous_text=order[i - 1].text if i > 0 else "",
            next_text=order[i + 1].text if i + 1 < len(order) else "", **inputs[line.pk])
        Line.objects.filter(pk=line.pk).update(speech_job=job)
        line.speech_job = job
        jobs.append(job)
    batch.jobs.add(*jobs)
    Book.objects.filter(pk=book.pk).update(status=Book.Status.GENERATING)
    book.status = Book.Status.GENERATING
    _touch(book)
    progress = _progress(book)
    transaction.on_commit(lambda: notify_user(book.owner_id, "book.progress", {"book_id": str(book.pk), **progress}),
                          robust=True)
    # One wake-up per job (each runs one), in one callback: a failure there leaves the jobs to
    # the reaper's minute rather than failing the request after its commit.
    transaction.on_commit(lambda: speech_jobs_wake(count=len(jobs)), robust=True)
    return batch


def _cancel_jobs(jobs: Sequence[SpeechJob | None]) -> None:
    """Queued jobs are cancelled (their characters go back); running ones finish on their own."""
    # Every id: the cancel's own locked `status = queued` filter decides (a job the reaper
    # just put back to the queue is cancelled too).
    ids = [job.pk for job in jobs if job is not None]
    if ids:
        speech_jobs_cancel_queued(job_ids=ids)


def _line_statuses(book: Book) -> list[str | None]:
    return list(Line.objects.filter(page__book=book).values_list("speech_job__status", flat=True))


def _progress(book: Book, statuses: list | None = None) -> dict:
    statuses = _line_statuses(book) if statuses is None else statuses
    return {"done": statuses.count(SpeechJob.Status.SUCCEEDED), "failed": statuses.count(SpeechJob.Status.FAILED),
            "total": len(statuses)}


def _settle(book: Book, statuses: list | None = None) -> str | None:
    """The book's status once no line is queued or running (None while some are); closes the
    batches whose jobs all ended. Caller holds the book's row lock."""
    lines = _line_statuses(book) if statuses is None else statuses
    if any(status in OPEN for status in lines):
        return None
    succeeded = lines.count(SpeechJob.Status.SUCCEEDED)
    status = (Book.Status.READY if succeeded == len(lines) else
              Book.Status.FAILED if succeeded == 0 else Book.Status.PARTIAL)
    now = timezone.now()
    for batch in book.batches.filter(finished_at__isnull=True):
        counts = list(batch.jobs.values_list("status", flat=True))
        if any(s in OPEN for s in counts):
            continue
        batch.succeeded, batch.failed = counts.count(SpeechJob.Status.SUCCEEDED), counts.count(SpeechJob.Status.FAILED)
        batch.cancelled, batch.finished_at = counts.count(SpeechJob.Status.CANCELLED), now
        batch.save(update_fields=["succeeded", "failed", "cancelled", "finished_at"])
    Book.objects.filter(pk=book.pk).update(status=status)
    return status


def _announce_settled(book: Book, status: str, progress: dict) -> None:
    data = {"book_id": str(book.pk), "status": status, **progress}
    if status == Book.Status.READY:
        transaction.on_commit(lambda: notify_user(book.owner_id, "book.ready", data), robust=True)
        transaction.on_commit(lambda: book_files_queue(book_id=book.pk), robust=True)
    else:
        transaction.on_commit(lambda: notify_user(book.owner_id, "book.failed", data), robust=True)


def _locked(*, user, book_id: UUID) -> Book:
    book = Book.objects.select_for_update(of=("self",)).filter(pk=book_id, owner=user).first()
    if book is None:
        raise BookNotFound()
    return book


# --- create -----------------------------------------------------------------------------------------

def book_create(*, user, title: str, language: str, narrator_voice_id: UUID, pages: Sequence[PageInput],
                description: str = "", idempotency_key: str = "", images: Sequence[UploadedImage] = (),
                cover: UploadedImage | None = None) -> Book:
    """A book in `generating`, every line queued for narration; the whole book's characters
    are reserved at once (429 `quota_exceeded` when they do not fit). `images`, if any, are one
    per page for the first pages, in order; every image is decoded before anything is stored."""
    _check_limits(pages)
    if len(images) > len(pages):
        raise ValidationFailed(f"At most one image per page: {len(pages)} pages, {len(images)} images.",
                               details={"fields": {"images": [f"At most {len(pages)} files, in page order."]}})
    for image in [*images, *([cover] if cover else [])]:
        image_validate(image)
    voices = _Voices(user)
    narrator = voices.get(narrator_voice_id)
    stored: list[str] = []
    try:
        return _book_create(user=user, title=title, language=language, narrator=narrator, pages=pages,
                            description=description, idempotency_key=idempotency_key, images=images, cover=cover,
                            voices=voices, stored=stored)
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise


def _book_create(*, user, title, language, narrator, pages, description, idempotency_key, images, cover, voices,
                 stored: list[str]) -> Book:
    with transaction.atomic():
        book = Book.objects.create(owner=user, title=title, language=language or narrator.language or "en",
                                   description=description, narrator_voice=narrator, idempotency_key=idempotency_key)
        if cover is not None:
            stored.append(image_store(cover, folder=book_images_folder(book.pk)))
            Book.objects.filter(pk=book.pk).update(cover=stored[-1])
        lines = []
        for number, page_input in enumerate(pages, start=1):
            image = ""
            if number <= len(images):  # images go to the first pages, in order
                stored.append(image_store(images[number - 1], folder=book_images_folder(book.pk)))
                image = stored[-1]
            page = Page.objects.create(book=book, number=number, text=page_input.text, image=image)
            for order, line_input in enumerate(page_input.lines, start=1):
                lines.append(Line(page=page, order=order, speaker=line_input.speaker, text=line_input.text,
                                  voice=voices.get(line_input.voice_id) if line_input.voice_id else None))
        Line.objects.bulk_create(lines)
        if lines:
            _queue(book, lines, kind=GenerationBatch.Kind.INITIAL, voices=voices)
        else:
            _touch(book)
    book.refresh_from_db()
    return book


# --- the engine's hook: a line's job ended ------------------------------------------------------------

def book_lock_for_job(*, job: SpeechJob) -> Book | None:
    """The engine calls this first when a story-line job ends: the book's row is locked before
    the engine locks the job and the quota, the order every book write takes them in."""
    if job.purpose != SpeechJob.Purpose.STORY_LINE:
        return None
    return Book.objects.select_for_update(of=("self",)).filter(pages__lines__speech_job_id=job.pk).first()


def book_line_job_finished(*, job: SpeechJob) -> None:
    """Called by the speech engine in the transaction that ends a story-line job."""
    if job.purpose != SpeechJob.Purpose.STORY_LINE:
        return
    book = book_lock_for_job(job=job)
    if book is None:
        return  # an edit replaced this job (the line waits for its new one), or the book is gone
    _touch(book)
    statuses = _line_statuses(book)  # read once for the progress and the settling
    progress = _progress(book, statuses)
    transaction.on_commit(lambda: notify_user(book.owner_id, "book.progress", {"book_id": str(book.pk), **progress}),
                          robust=True)
    status = _settle(book, statuses)
    if status is not None:
        _announce_settled(book, status, progress)


# --- retry, cancel, delete ------------------------------------------------------------------------------

def book_retry(*, user, book_id: UUID) -> Book:
    """A new batch of the lines without audio (failed or cancelled); the book is back in
    `generating`. Nothing to retry is 400."""
    with transaction.atomic():
        book = _locked(user=user, book_id=book_id)
        lines = [line for line in _reading_order(book)
                 if line.speech_job is None or line.speech_job.status in RETRYABLE]
        if not lines:
            raise ValidationFailed("No line of this book failed; there is nothing to retry.")
        _queue(book, lines, kind=GenerationBatch.Kind.RETRY, voices=_Voices(user))
    book.refresh_from_db()
    return book


def book_cancel(*, user, book_id: UUID) -> Book:
    """Queued lines are cancelled and their characters released; running lines finish."""
    with transaction.atomic():
        book = _locked(user=user, book_id=book_id)
        _cancel_jobs([line.speech_job for line in _reading_order(book)])
        _touch(book)
        _resettle(book)
    book.refresh_from_db()
    return book


def book_delete(*, user, book_id: UUID) -> None:
    """The book, its pages and lines, its image and export files; queued lines are cancelled. The
    clips stay (other jobs may share them; account cleanup removes unused ones)."""
    with transaction.atomic():
        book = _locked(user=user, book_id=book_id)
        _cancel_jobs([line.speech_job for line in _reading_order(book)])
        files = [f for f in [book.cover, *(page.image for page in book.pages.all()),
                             *(export.file for export in book.exports.all())] if f]
        names = [f.name for f in files]
        audio_clip_id = book.audio_clip_id
        book.delete()
        bump_user_cache_version([user.pk])
        if audio_clip_id:
            _drop_book_audio_if_unused(audio_clip_id)
        transaction.on_commit(lambda: [f.storage.delete(name) for f, name in zip(files, names)], robust=True)
        # Also what a build killed mid-way left behind (its files were stored before their rows).
        transaction.on_commit(lambda: _delete_tree(f"book-exports/{book_id}"), robust=True)


def _delete_tree(folder: str) -> None:
    if not default_storage.exists(folder):
        return
    folders, names = default_storage.listdir(folder)
    for name in names:
        default_storage.delete(f"{folder}/{name}")
    for sub in folders:
        _delete_tree(f"{folder}/{sub}")


def books_delete_for_account(*, user) -> None:
    """Account cleanup step: every book of the user and its files."""
    for book_id in Book.objects.filter(owner=user).values_list("pk", flat=True):
        book_delete(user=user, book_id=book_id)


# --- edits -------------------------------------------------------------------------------------------------

def book_update(*, user, book_id: UUID, title: str | None = None, description: str | None = None,
                narrator_voice_id: UUID | None = None) -> Book:
    """A new narrator requeues the lines the narrator reads (those without their own voice)."""
    with transaction.atomic():
        book = _locked(user=user, book_id=book_id)
        fields = []
        for name, value in (("title", title), ("description", description)):
            if value is not None and getattr(book, name) != value:
                setattr(book, name, value)
                fields.append(name)
        voices = _Voices(user)
        requeue = []
        if narrator_voice_id is not None and narrator_voice_id != book.narrator_voice_id:
            book.narrator_voice = voices.get(narrator_voice_id)
            fields.append("narrator_voice")
            requeue = [line for line in _reading_order(book) if line.voice_id is None]
        if fields:
            book.save(update_fields=[*fields, "updated_at"])
        if requeue:
            _cancel_jobs([line.speech_job for line in requeue])
            _queue(book, requeue, kind=GenerationBatch.Kind.EDIT, voices=voices)
        elif fields:
            _touch(book)
            _refresh_files(book)
    book.refresh_from_db()
    return book


def page_update(*, user, book_id: UUID, page_id: UUID, text: str | None = None, number: int | None = None) -> Page:
    with transaction.atomic():
        book = _locked(user=user, book_id=book_id)
        page = Page.objects.filter(pk=page_id, book=book).first()
        if page is None:
            raise BookNotFound("No such page in this book.")
        if text is not None:
            page.text = text
            page.save(update_fields=["text"])
        if number is not None and number != page.number:
            _move(Page.objects.filter(book=book), page, "number", number)
        _touch(book)
        _refresh_files(book)
    page.refresh_from_db()
    return page


def page_add(*, user, book_id: UUID, text: str = "", lines: Sequence[LineInput] = ()) -> Page:
    with transaction.atomic():
        book = _locked(user=user, book_id=book_id)
        if book.pages.count() >= settings.STORYBOOK_MAX_PAGES:
            raise ValidationFailed(f"A book has at most {settings.STORYBOOK_MAX_PAGES} pages.")
        number = (book.pages.aggregate(n=Max("number"))["n"] or 0) + 1
        page = Page.objects.create(book=book, number=number, text=text)
        voices = _Voices(user)
        new = Line.objects.bulk_create(
            Line(page=page, order=i, speaker=li.speaker, text=li.text,
                 voice=voices.get(li.voice_id) if li.voice_id else None) for i, li in enumerate(lines, start=1))
        if new:
            _queue(book, new, kind=GenerationBatch.Kind.EDIT, voices=voices)
        else:
            _touch(book)
            _refresh_files(book)
    return page


def page_delete(*, user, book_id: UUID, page_id: UUID) -> None:
    with transaction.atomic():
        book = _locked(user=user, book_id=book_id)
        page = Page.objects.filter(pk=page_id, book=book).first()
        if page is None:
            raise BookNotFound("No such page in this book.")
        _cancel_jobs([line.speech_job for line in page.lines.select_related("speech_job")])
        image = page.image.name if page.image else ""
        page.delete()
        Page.objects.filter(book=book, number__gt=page.number).update(number=F("number") - 1)
        _touch(book)
        _resettle(book)
        if image:
            transaction.on_commit(lambda: Page.image.field.storage.delete(image), robust=True)


def line_add(*, user, book_id: UUID, page_id: UUID, line: LineInput) -> Line:
    with transaction.atomic():
        book = _locked(user=user, book_id=book_id)
        page = Page.objects.filter(pk=page_id, book=book).first()
        if page is None:
            raise BookNotFound("No such page in this book.")
        if page.lines.count() >= settings.STORYBOOK_MAX_LINES_PER_PAGE:
            raise ValidationFailed(f"A page has at most {settings.STORYBOOK_MAX_LINES_PER_PAGE} lines.")
        voices = _Voices(user)
        new = Line.objects.create(page=page, order=(page.lines.aggregate(n=Max("order"))["n"] or 0) + 1,
                                  speaker=line.speaker, text=line.text,
                                  voice=voices.get(line.voice_id) if line.voice_id else None)
        _queue(book, [new], kind=GenerationBatch.Kind.EDIT, voices=voices)
    return new


def line_update(*, user, book_id: UUID, line_id: UUID, text: str | None = None, speaker: str | None = None,
                voice_id: UUID | None = None, narrator: bool = False, order: int | None = None) -> Line:
    """A new text or voice requeues this line only (its neighbours keep their audio).
    `narrator=True` hands the line back to the book's narrator."""
    with transaction.atomic():
        book = _locked(user=user, book_id=book_id)
        line = Line.objects.filter(pk=line_id, page__book=book).select_related("speech_job", "page").first()
        if line is None:
            raise BookNotFound("No such line in this book.")
        voices = _Voices(user)
        requeue = False
        if text is not None and text != line.text:
            line.text, requeue = text, True
        if speaker is not None:
            line.speaker = speaker
        if narrator and line.voice_id is not None:
            line.voice, requeue = None, True
        elif voice_id is not None and voice_id != line.voice_id:
            line.voice, requeue = voices.get(voice_id), True
        line.save(update_fields=["text", "speaker", "voice"])
        if order is not None and order != line.order:
            _move(Line.objects.filter(page=line.page), line, "order", order)
        if requeue:
            _cancel_jobs([line.speech_job])
            _queue(book, [line], kind=GenerationBatch.Kind.EDIT, voices=voices)
        else:
            _touch(book)
            _refresh_files(book)
    line.refresh_from_db()
    return line


def line_delete(*, user, book_id: UUID, line_id: UUID) -> None:
    with transaction.atomic():
        book = _locked(user=user, book_id=book_id)
        line = Line.objects.filter(pk=line_id, page__book=book).select_related("speech_job").first()
        if line is None:
            raise BookNotFound("No such line in this book.")
        _cancel_jobs([line.speech_job])
        line.delete()
        Line.objects.filter(page_id=line.page_id, order__gt=line.order).update(order=F("order") - 1)
        _touch(book)
        _resettle(book)


def _refresh_files(book: Book) -> None:
    """A ready book's exports show its title and pictures: build them again after such a change
    (the audio build finds its file current and goes on to the exports)."""
    if book.status == Book.Status.READY:
        transaction.on_commit(lambda: book_files_queue(book_id=book.pk), robust=True)


def _resettle(book: Book) -> None:
    """After lines were cancelled or went away: the book's status again, announced when it changed
    (a book with no line left is a draft)."""
    if book.status == Book.Status.DRAFT:
        return
    if not Line.objects.filter(page__book=book).exists():
        Book.objects.filter(pk=book.pk).update(status=Book.Status.DRAFT)
        return
    status = _settle(book)
    if status is not None and status != book.status:
        _announce_settled(book, status, _progress(book))
    elif status == Book.Status.READY:
        _refresh_files(book)  # still ready, with a line or page fewer


def _move(siblings, item, field: str, target: int) -> None:
    """Move `item` to position `target` (1-based, clamped) among `siblings`, shifting the others
    (the uniqueness constraint is checked at commit)."""
    count = siblings.count()
    target = max(1, min(target, count))
    current = getattr(item, field)
    if target == current:
        return
    if target < current:
        siblings.filter(**{f"{field}__gte": target, f"{field}__lt": current}).update(**{field: F(field) + 1})
    else:
        siblings.filter(**{f"{field}__gt": current, f"{field}__lte": target}).update(**{field: F(field) - 1})
    type(item).objects.filter(pk=item.pk).update(**{field: target})


# --- whole-book audio --------------------------------------------------------------------------------------

def book_playable_lines(*, book: Book) -> list[Line]:
    """The lines with audio, in reading order (each with its job and clip loaded)."""
    return [line for line in _reading_order(book)
            if line.speech_job is not None and line.speech_job.status == SpeechJob.Status.SUCCEEDED]


def book_audio_fingerprint(*, lines: Sequence[Line]) -> str:
    """What the whole-book file is made of: the lines in order, their clips, and the loudness
    they are matched to."""
    return audio_fingerprint([
        f"loudness:{settings.STORYBOOK_LOUDNESS_LUFS:.2f}:{settings.STORYBOOK_TRUE_PEAK_DBTP:.2f}",
        *(f"{line.page.number}:{line.pk}:{line.speech_job.clip_id}" for line in lines)])


def _loudness() -> dict:
    return {"target_lufs": settings.STORYBOOK_LOUDNESS_LUFS, "true_peak_dbtp": settings.STORYBOOK_TRUE_PEAK_DBTP}


def line_audio_matched(*, line: Line) -> AudioClip:
    """The line's clip at the book loudness (made on first use, then shared by content)."""
    return clip_loudness_matched(clip=line.speech_job.clip, **_loudness())


def line_audio_unmatched(*, lines: Sequence[Line]) -> list[Line]:
    """The lines whose clip has no rendition at the book loudness yet."""
    return [line for line in lines if clip_loudness_rendition(clip=line.speech_job.clip, **_loudness()) is None]


def _segments(lines: Sequence[Line]) -> list[Segment]:
    return [Segment(page_id=str(line.page_id), page_number=line.page.number, line_id=str(line.pk),
                    file_name=line_audio_matched(line=line).file.name) for line in lines]


def book_audio(*, user, book_id: UUID) -> dict | None:
    """The whole-book file and its index, or None while it is being built (a build is queued
    when none is current). A book with no narrated line yet is 400."""
    book = Book.objects.filter(pk=book_id, owner=user).first()
    if book is None:
        raise BookNotFound()
    if book.status == Book.Status.GENERATING:
        return None  # built once the lines settle
    lines = book_playable_lines(book=book)
    if not lines:
        raise ValidationFailed("No line of this book has audio yet.")
    current = book_audio_fingerprint(lines=lines)
    if book.audio_clip_id and book.audio_fingerprint == current:
        return {"clip_id": book.audio_clip_id, "duration_ms": book.audio_clip.duration_ms, "pages": book.audio_index}
    book_files_queue(book_id=book.pk)
    return None


def book_audio_build(*, book_id: UUID) -> str:
    """Build (or reuse) the file for the book's current lines; a build overtaken by a change
    stores nothing. Returns what happened."""
    book = Book.objects.filter(pk=book_id).first()
    if book is None:
        return "gone"
    lines = book_playable_lines(book=book)
    if not lines:
        return "nothing to play"
    current = book_audio_fingerprint(lines=lines)
    if book.audio_fingerprint == current and book.audio_clip_id:
        return "current"
    content_hash = hashlib.sha256(f"book-audio:{current}".encode()).hexdigest()
    clip = AudioClip.objects.filter(content_hash=content_hash).first()
    index = book.audio_index
    if clip is None:
        data, duration_ms, index = audio_render(_segments(lines))
        path = default_storage.save(f"{BOOK_AUDIO_FOLDER}/{content_hash[:2]}/{content_hash}.mp3", ContentFile(data))
        clip, created = AudioClip.objects.get_or_create(content_hash=content_hash, defaults={
            "file": path, "mime_type": "audio/mpeg", "output_format": AUDIO_FORMAT, "duration_ms": duration_ms,
            "size_bytes": len(data), "words": [], "provider": "book", "provider_voice_id": "", "model_id": ""})
        if not created:
            default_storage.delete(path)
    elif not index or book.audio_fingerprint != current:
        index = audio_render(_segments(lines))[2]  # the same content under another book: its index
    with transaction.atomic():
        locked = Book.objects.select_for_update().filter(pk=book.pk).first()
        if locked is None or book_audio_fingerprint(lines=book_playable_lines(book=locked)) != current:
            _drop_book_audio_if_unused(clip.pk)  # built for content that no longer exists
            return "overtaken"
        previous = locked.audio_clip_id
        Book.objects.filter(pk=book.pk).update(audio_clip=clip, audio_fingerprint=current, audio_index=index)
        if previous and previous != clip.pk:
            _drop_book_audio_if_unused(previous)
        _touch(locked)
    return "built"


def _drop_book_audio_if_unused(clip_id) -> None:
    """Delete a whole-book clip (row now, file on commit) once no book and no job uses it."""
    clip = AudioClip.objects.filter(pk=clip_id, provider="book", jobs__isnull=True).first()
    if clip is None or Book.objects.filter(audio_clip_id=clip_id).exists():
        return
    name = clip.file.name
    clip.delete()
    transaction.on_commit(lambda: default_storage.delete(name), robust=True)


# --- images --------------------------------------------------------------------------------------------------

def book_cover_set(*, user, book_id: UUID, image: UploadedImage) -> None:
    _replace_image(user=user, book_id=book_id, image=image, page_id=None)


def page_image_set(*, user, book_id: UUID, page_id: UUID, image: UploadedImage) -> None:
    _replace_image(user=user, book_id=book_id, image=image, page_id=page_id)


def _replace_image(*, user, book_id: UUID, image: UploadedImage, page_id: UUID | None) -> None:
    image_validate(image)  # before the lock: decoding a large picture takes a while
    with transaction.atomic():
        book = _locked(user=user, book_id=book_id)
        target = book
        if page_id is not None:
            target = Page.objects.filter(pk=page_id, book=book).first()
            if target is None:
                raise BookNotFound("No such page in this book.")
        field = "image" if page_id is not None else "cover"
        old = getattr(target, field).name
        name = image_store(image, folder=book_images_folder(book.pk))
        type(target).objects.filter(pk=target.pk).update(**{field: name})
        _touch(book)
        _refresh_files(book)
        transaction.on_commit(lambda: default_storage.delete(old) if old else None, robust=True)
