"""django-q2 entry points: take ids, call a service."""

from uuid import UUID

from .exports import services as exports


def build_book_files(book_id: str) -> str:
    """On the tts cluster: the book's matched lines, whole-book audio and exports."""
    return exports.book_files_build(book_id=UUID(book_id))


# The name tasks were queued under before exports existed: such a task still builds its book.
build_book_audio = build_book_files
