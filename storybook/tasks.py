"""django-q2 entry points: take ids, call a service."""

from uuid import UUID

from . import services


def build_book_audio(book_id: str) -> str:
    """On the tts cluster: the whole-book file."""
    return services.book_audio_build(book_id=UUID(book_id))
