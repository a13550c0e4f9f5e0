"""Serving a stored file to a player or a reader: whole, or one byte range (206) when asked, as
phone players and audiobook apps do when they seek."""

import re

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse

# Single byte ranges; 15 digits is far past any file's size (and keeps int() cheap).
_RANGE = re.compile(r"^bytes=(\d{0,15})-(\d{0,15})$")
_CHUNK = 65536


def ranged_file_response(request: HttpRequest, *, name: str, size: int, content_type: str,
                         filename: str | None = None) -> HttpResponse:
    """The file `name` in storage: 200 in full, 206 for one satisfiable range, 416 otherwise.
    With `filename`, a download (Content-Disposition: attachment)."""
    header = request.headers.get("Range", "")
    match = _RANGE.match(header.strip()) if header else None
    if match is None or not any(match.groups()):
        response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
        response["Content-Length"] = str(size)
    else:
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        else:  # "bytes=-N": the last N bytes
            start, end = max(0, size - int(last)), size - 1
        if start > end or start >= size:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        handle = default_storage.open(name, "rb")
        handle.seek(start)

        def chunks(remaining: int = end - start + 1):
            try:
                while remaining > 0:
                    data = handle.read(min(_CHUNK, remaining))
                    if not data:
                        return
                    remaining -= len(data)
                    yield data
            finally:
                handle.close()

        response = StreamingHttpResponse(chunks(), status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    if filename is not None:
        response["Content-Disposition"] = _attachment(filename)
    return response


def _attachment(filename: str) -> str:
    from urllib.parse import quote

    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in " ._-") else "_" for c in filename)[:150]
    return f"attachment; filename=\"{ascii_name or 'download'}\"; filename*=UTF-8''{quote(filename[:150])}"
