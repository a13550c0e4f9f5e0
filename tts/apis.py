"""The speech engine's own endpoints: the caller's jobs, quota, and signed audio downloads."""

from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import errors
from config.api.cache import cached_list_response
from config.api.errors import error_response
from config.api.files import ranged_file_response
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


@require_safe  # GET and HEAD: players ask for the headers first
def audio_file(request: HttpRequest, token: str) -> HttpResponse:
    """A clip by its signed URL, with single-range requests (206) for phone players."""
    clip_id = clip_id_from_token(token)
    clip = AudioClip.objects.filter(pk=clip_id).first() if clip_id else None
    if clip is None or not clip.file or not default_storage.exists(clip.file.name):
        return error_response(errors.NotFound("This audio link is invalid or has expired."))
    return ranged_file_response(request, name=clip.file.name, size=clip.size_bytes, content_type=clip.mime_type)
