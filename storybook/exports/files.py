"""Export files by signed, expiring URLs (`/exports/<token>`): a reader app, an <audio> or a
<track> element fetches them with no auth header, with byte ranges for seeking."""

import re
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_safe

from config.api import errors
from config.api.errors import error_response
from config.api.files import ranged_file_response
from config.api.signed import sign, unsign

from ..models import BookExport
from .services import FILE_TYPES

SALT = "storybook.export"


def export_url(*, request, export: BookExport) -> tuple[str, datetime]:
    token, expires = sign(salt=SALT, value=str(export.pk))
    return request.build_absolute_uri(reverse("export-file", kwargs={"token": token})), expires


def _download_name(export: BookExport) -> str:
    title = re.sub(r"[\x00-\x1f/\\]+", " ", export.book.title).strip() or "book"
    suffix = f" (page {export.page})" if export.page else ""
    return f"{title}{suffix}.{FILE_TYPES[export.kind][1]}"


@require_safe
def export_file(request: HttpRequest, token: str) -> HttpResponse:
    value = unsign(salt=SALT, token=token)
    export = BookExport.objects.select_related("book").filter(pk=value).first() if value and _uuid(value) else None
    if export is None:
        return error_response(errors.NotFound("This export link is invalid or has expired."))
    # A read-along is read inline by a player; the rest are downloads named after the book.
    filename = None if export.kind == BookExport.Kind.VTT else _download_name(export)
    return ranged_file_response(request, name=export.file.name, size=export.size_bytes, content_type=export.mime_type,
                                filename=filename)


def _uuid(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", value))
