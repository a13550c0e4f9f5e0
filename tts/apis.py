"""The speech engine's own endpoints: the caller's jobs, quota, and signed audio downloads."""

import re

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import errors
from config.api.cache import cached_list_response
from config.api.errors import error_response
from config.api.pagination import PageNumberPagination
from config.api.schema import api_errors, filter_parameters

from . import selectors, serializers, services
from .audio_urls import clip_id_from_token
from .filters import SpeechJobFilter
from .models import AudioClip
from .quota import quota_summary


class SpeechJobListView(APIView):
    filterset_class = SpeechJobFilter
    pagination_class = PageNumberPagination
    api_tag = "speech"

    @extend_schema(operation_id="job_list", responses={200: serializers.SpeechJobOutputSerializer(many=True)},
                   parameters=filter_parameters(SpeechJobFilter))
    def get(self, request: Request) -> Response:
        filters = SpeechJobFilter(request.query_params, queryset=selectors.speech_job_list(user=request.user),
                                  request=request)
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        return cached_list_response(
            request, view=self, items=lambda: filters.qs, keys=None,
            render=lambda jobs: [serializers.render_job(job, request=request) for job in jobs])


class SpeechJobDetailView(APIView):
    api_tag = "speech"

    @extend_schema(operation_id="job_get", responses={200: serializers.SpeechJobOutputSerializer})
    @api_errors(errors.JobNotFound)
    def get(self, request: Request, job_id) -> Response:
        job = selectors.speech_job_get(user=request.user, job_id=job_id)
        return Response(serializers.render_job(job, request=request))


class SpeechJobCancelView(APIView):
    api_tag = "speech"

    @extend_schema(operation_id="job_cancel", request=None, responses={200: serializers.SpeechJobOutputSerializer})
    @api_errors(errors.JobNotFound, errors.JobNotCancellable)
    def post(self, request: Request, job_id) -> Response:
        job = services.speech_job_cancel(user=request.user, job_id=job_id)
        return Response(serializers.render_job(job, request=request))


class QuotaView(APIView):
    api_tag = "speech"

    @extend_schema(operation_id="quota_get", responses={200: serializers.QuotaOutputSerializer})
    def get(self, request: Request) -> Response:
        return Response(serializers.QuotaOutputSerializer(quota_summary(user=request.user)).data)


# Single byte ranges; 15 digits is far past any clip's size (and keeps int() cheap).
_RANGE = re.compile(r"^bytes=(\d{0,15})-(\d{0,15})$")


@require_safe  # GET and HEAD: players ask for the headers first
def audio_file(request: HttpRequest, token: str) -> HttpResponse:
    """A clip by its signed URL, with single-range requests (206) for phone players."""
    clip_id = clip_id_from_token(token)
    clip = AudioClip.objects.filter(pk=clip_id).first() if clip_id else None
    if clip is None or not clip.file or not default_storage.exists(clip.file.name):
        return error_response(errors.NotFound("This audio link is invalid or has expired."))
    size = clip.size_bytes
    header = request.headers.get("Range", "")
    match = _RANGE.match(header.strip()) if header else None
    if match is None or not any(match.groups()):
        response = FileResponse(default_storage.open(clip.file.name, "rb"), content_type=clip.mime_type)
        response["Accept-Ranges"] = "bytes"
        response["Content-Length"] = str(size)
        return response
    first, last = match.groups()
    if first:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    else:  # "bytes=-N": the last N bytes
        start, end = max(0, size - int(last)), size - 1
    if start > end or start >= size:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    handle = default_storage.open(clip.file.name, "rb")
    handle.seek(start)

    def chunks(remaining: int = end - start + 1):
        try:
            while remaining > 0:
                data = handle.read(min(65536, remaining))
                if not data:
                    return
                remaining -= len(data)
                yield data
        finally:
            handle.close()

    response = StreamingHttpResponse(chunks(), status=206, content_type=clip.mime_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    return response
