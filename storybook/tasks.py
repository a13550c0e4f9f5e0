"""django-q2 entry points: take ids, call a service."""

from uuid import UUID

from . import services
from .exports import services as exports


def build_book_files(book_id: str) -> str:
    """On the tts cluster: the whole-book audio, then the exports made from it."""
    audio = services.book_audio_build(book_id=UUID(book_id))
    if audio not in ("built", "current"):
        return f"audio: {audio}"
    return f"audio: {audio}; exports: {exports.book_exports_build(book_id=UUID(book_id))}"
