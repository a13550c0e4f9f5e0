"""Serving a stored file to a player or a reader: whole, or one byte range (206) when asked, as
phone players and audiobook apps do when they seek. The body is streamed in chunks, as an
async iterator under ASGI (Django would otherwise read a sync iterator whole into memory before
sending a byte) and a sync one under WSGI."""

import re
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from . import errors
from .errors import error_response

# Single byte ranges; 15 digits is far past any file's size (and keeps int() cheap).
_RANGE = re.compile(r"^bytes=(\d{0,15})-(\d{0,15})$")
_CHUNK = 256 * 1024


def _sync_chunks(handle, remaining: int) -> Iterator[bytes]:
    try:
        while remaining > 0:
            data = handle.read(min(_CHUNK, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data
    finally:
        handle.close()


async def _async_chunks(handle, remaining: int) -> AsyncIterator[bytes]:
    read = sync_to_async(handle.read, thread_sensitive=False)
    try:
        while remaining > 0:
            data = await read(min(_CHUNK, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data
    finally:
        await sync_to_async(handle.close, thread_sensitive=False)()


def _byte_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """(start, end) of a satisfiable single range; None to send the whole file (no range, or one
    this does not serve, which RFC 9110 says to ignore); False when it is past the end (416)."""
    match = _RANGE.match(header.strip()) if header else None
    if match is None or not any(match.groups()):
        return None
    first, last = match.groups()
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return None  # "bytes=5-3" is invalid: ignored
    else:  # "bytes=-N": the last N bytes
        if int(last) == 0:
            return False
        start, end = max(0, size - int(last)), size - 1
    return (start, end) if start < size else False


def ranged_file_response(request: HttpRequest, *, name: str, size: int, content_type: str,
                         filename: str | None = None) -> HttpResponse:
    """The file `name` in storage: 200 in full, 206 for one satisfiable range, 416 past the end,
    404 JSON when the file is gone. With `filename`, a download (Content-Disposition: attachment)."""
    wanted = _byte_range(request.headers.get("Range", ""), size)
    if wanted is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    try:
        handle = default_storage.open(name, "rb")
    except FileNotFoundError:  # replaced or deleted since its row was read
        return error_response(errors.NotFound("This link is invalid or has expired."))
    start, end = wanted or (0, size - 1)
    if start:
        handle.seek(start)
    length = end - start + 1 if size else 0
    chunks = _async_chunks(handle, length) if isinstance(request, ASGIRequest) else _sync_chunks(handle, length)
    response = StreamingHttpResponse(chunks, status=206 if wanted else 200, content_type=content_type)
    response["Content-Length"] = str(length)
    if wanted:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    if filename is not None:
        response["Content-Disposition"] = _attachment(filename)
    return response


def _attachment(filename: str) -> str:
    stem, dot, extension = filename.rpartition(".")
    if not dot or len(extension) > 8:
        stem, extension = filename, ""
    stem = stem[:150]  # the name is cut, never its extension
    suffix = f".{extension}" if extension else ""
    ascii_stem = "".join(c if c.isascii() and (c.isalnum() or c in " ._-") else "_" for c in stem)
    return (f"attachment; filename=\"{ascii_stem or 'download'}{suffix}\"; "
            f"filename*=UTF-8''{quote(stem + suffix)}")
