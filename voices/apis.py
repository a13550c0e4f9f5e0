from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.idempotency import idempotent
from config.api import errors
from config.api.cache import cached_list_response
from config.api.pagination import PageNumberPagination
from config.api.schema import api_errors, filter_parameters
from tts import serializers as tts_serializers
from tts.providers import SampleFile

from . import selectors, serializers, services
from .filters import VoiceFilter
from .models import Voice


# What any provider call can answer with: the provider busy, down, refusing, or the operator's
# account out of order.
PROVIDER_ERRORS = (errors.RateLimited, errors.ProviderRejected, errors.ProviderUnavailable, errors.InvalidApiKey,
                   errors.ProviderQuotaExceeded)


def _detail(voice: Voice, request: Request) -> dict:
    return serializers.VoiceDetailSerializer(voice, context={"user": request.user, "request": request}).data


class VoiceListView(APIView):
    """Own voices (any status), default voices and approved public voices."""

    filterset_class = VoiceFilter
    pagination_class = PageNumberPagination
    api_tag = "voices"

    @extend_schema(
        operation_id="voice_list",
        parameters=[OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, required=False),
                    *filter_parameters(VoiceFilter)],
        responses={200: serializers.VoiceOutputSerializer(many=True), 304: None},
    )
    def get(self, request: Request) -> Response:
        # The hot request names no filter: it skips the FilterSet (whose set-up deep-copies every
        # filter, a sixth of a cached hit's CPU). A named one is validated, even when empty.
        if request.query_params.keys() & VoiceFilter.base_filters.keys():
            filters = VoiceFilter(request.query_params, queryset=Voice.objects.none(), request=request)
            if not filters.is_valid():
                raise ValidationError(filters.errors)
            filtered = any(filters.form.cleaned_data.get(name) not in (None, "") for name in filters.filters)
        else:
            filtered = False
        if filtered:
            # Filtered reads go to the database (django-filter); the hot unfiltered list is cached.
            filters.queryset = selectors.voice_queryset_visible(user=request.user)
            return cached_list_response(
                request, view=self, items=lambda: filters.qs, keys=None,
                render=lambda rows: serializers.VoiceOutputSerializer(rows, many=True,
                                                                      context={"user": request.user}).data)
        keys = selectors.voice_list_cache_keys(user=request.user)
        return cached_list_response(
            request, view=self, keys=keys, etag_extra=selectors.voice_list_etag_extra(),
            items=lambda: selectors.voice_list(user=request.user, render=serializers.render_voice_items, keys=keys))


class VoiceCloneView(APIView):
    parser_classes = [MultiPartParser]
    throttle_scope = "clone"
    api_tag = "voices"

    @extend_schema(operation_id="voice_clone", request={"multipart/form-data": serializers.VoiceCloneInputSerializer},
                   responses={202: serializers.VoiceCloneOutputSerializer},
                   parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)])
    @api_errors(errors.InvalidAudio, errors.VoiceLimitReached, errors.NotAuthenticated, errors.IdempotencyKeyReused,
                errors.RequestInProgress, *PROVIDER_ERRORS)
    def post(self, request: Request) -> Response:
        return idempotent(request, "voice_clone", lambda: self._clone(request))

    def _clone(self, request: Request) -> Response:
        data = serializers.VoiceCloneInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        samples = [SampleFile(f.name, f.read(), f.content_type or "application/octet-stream")
                   for f in v["samples"]]
        cloned = services.voice_clone_create(
            user=request.user, name=v["name"], samples=samples, consent=v["consent"], language=v["language"],
            gender=v["gender"], description=v["description"], visibility=v["visibility"],
            remove_background_noise=v["remove_background_noise"],
        )
        voice = selectors.voice_get_visible(user=request.user, voice_id=cloned.voice.pk)
        body = {**_detail(voice, request), "warnings": cloned.warnings}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class VoiceDetailView(APIView):
    api_tag = "voices"

    @extend_schema(operation_id="voice_get", responses={200: serializers.VoiceDetailSerializer})
    @api_errors(errors.VoiceNotFound)
    def get(self, request: Request, voice_id) -> Response:
        voice = selectors.voice_get_visible(user=request.user, voice_id=voice_id)
        return Response(_detail(voice, request))

    @extend_schema(operation_id="voice_update", request=serializers.VoiceUpdateInputSerializer,
                   responses={200: serializers.VoiceDetailSerializer})
    @api_errors(errors.VoiceNotFound, errors.NotOwner, errors.PermissionDenied)
    def patch(self, request: Request, voice_id) -> Response:
        data = serializers.VoiceUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.voice_update(user=request.user, voice_id=voice_id, **data.validated_data)
        voice = selectors.voice_get_visible(user=request.user, voice_id=voice_id)
        return Response(_detail(voice, request))

    @extend_schema(operation_id="voice_delete", responses={204: None})
    @api_errors(errors.VoiceNotFound, errors.NotOwner, *PROVIDER_ERRORS)
    def delete(self, request: Request, voice_id) -> Response:
        services.voice_delete(user=request.user, voice_id=voice_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class GenerateView(APIView):
    """Text in a voice the caller may use -> a queued speech job (202)."""

    throttle_scope = "tts"
    api_tag = "speech"

    @extend_schema(operation_id="speech_generate", request=serializers.GenerateInputSerializer,
                   responses={202: tts_serializers.SpeechJobOutputSerializer},
                   parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)])
    @api_errors(errors.VoiceNotFound, errors.VoiceNotReady, errors.VoiceBlocked, errors.TextTooLong,
                errors.QuotaExceeded, errors.IdempotencyKeyReused, errors.RequestInProgress,
                errors.ProviderUnavailable)
    def post(self, request: Request) -> Response:
        return idempotent(request, "speech_generate", lambda: self._generate(request))

    def _generate(self, request: Request) -> Response:
        data = serializers.GenerateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        job = services.speech_generate(
            user=request.user, voice_id=v["voice_id"], text=v["text"], model_id=v["model_id"],
            language=v["language"], output_format=v["output_format"], voice_settings=v.get("voice_settings"),
            previous_text=v["previous_text"], next_text=v["next_text"],
            idempotency_key=request.headers.get("Idempotency-Key", ""))
        return Response(tts_serializers.render_job(job, request=request), status=status.HTTP_202_ACCEPTED)


class VoiceSharesView(APIView):
    """Family sharing: the owner shares a completed voice with another account."""

    api_tag = "voices"

    @extend_schema(operation_id="voice_share_list", responses={200: serializers.VoiceShareSerializer(many=True)})
    @api_errors(errors.VoiceNotFound)
    def get(self, request: Request, voice_id) -> Response:
        shares = services.voice_shares_list(user=request.user, voice_id=voice_id)
        return Response(serializers.VoiceShareSerializer(shares, many=True).data)

    @extend_schema(operation_id="voice_share_create", request=serializers.VoiceShareInputSerializer,
                   responses={201: serializers.VoiceShareSerializer, 200: serializers.VoiceShareSerializer},
                   description="The same answer whether or not an account has that email (a share to an email "
                               "with no account grants nothing). Sharing again with the same email is 200.")
    @api_errors(errors.VoiceNotFound, errors.NotOwner, errors.VoiceNotReady, errors.VoiceBlocked)
    def post(self, request: Request, voice_id) -> Response:
        selectors.voice_get_owned(user=request.user, voice_id=voice_id)
        data = serializers.VoiceShareInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        share, created = services.voice_share_create(user=request.user, voice_id=voice_id,
                                                     email=data.validated_data["email"])
        return Response(serializers.VoiceShareSerializer(share).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class VoiceShareDetailView(APIView):
    api_tag = "voices"

    @extend_schema(operation_id="voice_share_delete", responses={204: None},
                   description="The owner revokes a share, or the account it was shared with leaves it.")
    @api_errors(errors.VoiceNotFound, errors.NotOwner)
    def delete(self, request: Request, voice_id, share_id: int) -> Response:
        services.voice_share_delete(user=request.user, voice_id=voice_id, share_id=share_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
