"""Voice samples by signed, expiring URLs (`/samples/<token>`), for the moderators' players:
an <audio> tag sends no credentials, and a sample is never reachable by its storage name."""

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_safe

from config.api import errors
from config.api.errors import error_response
from config.api.files import ranged_file_response
from config.api.signed import sign, unsign
from tts.audio import MIME_TYPES

from .models import VoiceSample

SALT = "voices.sample"
_MIME = {**MIME_TYPES, "m4a": "audio/mp4", "aac": "audio/aac", "flac": "audio/flac", "webm": "audio/webm",
         "ogg": "audio/ogg"}


def sample_url(sample: VoiceSample) -> str:
    return reverse("sample-file", kwargs={"token": sign(salt=SALT, value=str(sample.pk))[0]})


@require_safe
def sample_file(request: HttpRequest, token: str) -> HttpResponse:
    value = unsign(salt=SALT, token=token)
    sample = VoiceSample.objects.filter(pk=int(value)).first() if value and value.isdigit() else None
    if sample is None or not sample.file:
        return error_response(errors.NotFound("This sample link is invalid or has expired."))
    return ranged_file_response(request, name=sample.file.name, size=sample.size_bytes,
                                content_type=_MIME.get(sample.format, "application/octet-stream"))
