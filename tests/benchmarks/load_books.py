"""Loader hook: storybooks at a realistic size.

Each bench user owns `books_per_user` (50) books of 12 pages with 4 lines each. Each user's newest
book (the one the detail scenarios read, `{detail_book}` in a scenario path) has every line
narrated: a succeeded job with a clip and word timings, so its detail signs 48 audio URLs.
"""

from __future__ import annotations

from tests.benchmarks.load import LoadContext, register_hook

PAGES, LINES = 12, 4


@register_hook
def load_books(ctx: LoadContext) -> None:
    from django.utils import timezone

    from storybook.models import Book, Line, Page
    from tts.models import AudioClip, SpeechJob
    from voices.models import Voice

    per_user = int(ctx.options.get("books_per_user", 50))
    narrator = Voice.objects.filter(visibility="default").first()
    words = [{"word": w, "start_ms": i * 300, "end_ms": i * 300 + 250}
             for i, w in enumerate("the little fox looked up at the moon and smiled".split())]
    clip = AudioClip.objects.create(content_hash="bench-book-line", file="bench/line.mp3", mime_type="audio/mpeg",
                                    output_format="mp3_44100_128", duration_ms=3000, size_bytes=48000, words=words,
                                    provider="local", provider_voice_id=narrator.provider_voice_id)
    now = timezone.now()
    books = []
    for user in ctx.users:
        for n in range(per_user):
            books.append(Book(owner=user, title=f"Book {n}", language="en", narrator_voice=narrator,
                              status=Book.Status.READY, created_at=now))
    books = Book.objects.bulk_create(books, batch_size=5000)
    pages = Page.objects.bulk_create(
        (Page(book=book, number=p, text=f"Page {p}") for book in books for p in range(1, PAGES + 1)), batch_size=5000)
    detail_books = {str(user.pk): books[i * per_user].pk for i, user in enumerate(ctx.users)}
    narrated = set(detail_books.values())
    lines, jobs = [], []
    for page in pages:
        for order in range(1, LINES + 1):
            line = Line(page=page, order=order, speaker="Fox", text="The little fox looked up at the moon and smiled.")
            if page.book_id in narrated:
                job = SpeechJob(owner_id=page.book.owner_id, provider="local", provider_voice_id=narrator.provider_voice_id,
                                text=line.text, characters=len(line.text), content_hash="bench-book-line",
                                output_format="mp3_44100_128", purpose="story_line", status="succeeded", clip=clip,
                                finished_at=now)
                jobs.append(job)
                line.speech_job = job
            lines.append(line)
    SpeechJob.objects.bulk_create(jobs, batch_size=5000)
    Line.objects.bulk_create(lines, batch_size=10000)
    ctx.extra["detail_books"] = {uid: str(bid) for uid, bid in detail_books.items()}
    ctx.extra["books_total"] = len(books)
