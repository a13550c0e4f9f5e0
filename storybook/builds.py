"""One build of a book's files at a time, and never a pile of them: the ready hook, edits and
clients polling `/audio` or an export all ask through `book_files_queue`, which queues the
build task once; a request that comes while a build runs makes that build go round once more
instead of starting a second one.

Two Redis keys per book: `queued` (a task is on its way) and `running` (a worker holds the
build, renewed between steps). Both expire, so a worker lost mid-build costs a delay, not a
book that never builds. With Redis down every request queues (a build is idempotent)."""

import logging
from uuid import UUID

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

QUEUED_KEY = "storybook:files:queued:{book_id}"
RUNNING_KEY = "storybook:files:running:{book_id}"


def _redis():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def _lifetime() -> int:
    # Longer than one run can last: the broker hands a lost task out again after `retry`.
    return settings.Q_CLUSTER["ALT_CLUSTERS"]["tts"]["retry"]


def book_files_queue(*, book_id: UUID) -> None:
    """Build the book's audio, then its exports, on the tts cluster (the main cluster keeps
    voice checks fast), unless a build is already queued."""
    from django_q.tasks import async_task

    try:
        first = _redis().set(QUEUED_KEY.format(book_id=book_id), "1", nx=True, ex=_lifetime())
    except (redis.RedisError, OSError):
        first = True
    if first:
        async_task("storybook.tasks.build_book_files", str(book_id), cluster="tts")


def book_files_claim(*, book_id: UUID) -> bool:
    """A worker starting a build: True when it holds the book. Requests from here on leave the
    `queued` mark for it to find when it finishes. False: another worker holds it, and will see
    the mark this task came with."""
    try:
        client = _redis()
        if not client.set(RUNNING_KEY.format(book_id=book_id), "1", nx=True, ex=_lifetime()):
            return False
        client.delete(QUEUED_KEY.format(book_id=book_id))
    except (redis.RedisError, OSError) as exc:
        # Unguarded: builds may overlap, and the last check under the book's lock decides.
        logger.warning("book %s: building without the single-build guard (Redis: %s)", book_id, exc)
    return True


def book_files_renew(*, book_id: UUID) -> None:
    try:
        _redis().expire(RUNNING_KEY.format(book_id=book_id), _lifetime())
    except (redis.RedisError, OSError) as exc:
        logger.warning("book %s: could not renew the build guard (Redis: %s)", book_id, exc)


def book_files_again(*, book_id: UUID) -> None:
    """The holder stops early (its time is up): the release queues the next round."""
    try:
        _redis().set(QUEUED_KEY.format(book_id=book_id), "1", ex=_lifetime())
    except (redis.RedisError, OSError) as exc:
        logger.warning("book %s: the next build round waits for a request (Redis: %s)", book_id, exc)


def book_files_release(*, book_id: UUID) -> None:
    """The build ends. A request that came while it ran left its mark: queue one more round."""
    try:
        client = _redis()
        client.delete(RUNNING_KEY.format(book_id=book_id))
        asked = client.delete(QUEUED_KEY.format(book_id=book_id))
    except (redis.RedisError, OSError):
        return
    if asked:
        book_files_queue(book_id=book_id)
