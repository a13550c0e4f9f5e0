from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.idempotency import idempotent
from config.api import errors
from config.api.cache import cached_list_response, private_cache_headers
from config.api.pagination import PageNumberPagination
from config.api.schema import api_errors
from tts.audio_urls import clip_url

from . import selectors, serializers, services
from .exports import services as exports
from .exports.files import export_url
from .images import UploadedImage
from .services import LineInput

VOICE_ERRORS = (errors.VoiceNotFound, errors.VoiceNotReady, errors.VoiceBlocked)


def _book(request: Request, book_id, *, code: int = status.HTTP_200_OK, written: bool = False) -> Response:
    if written:  # the write bumped the caller's cache version: read the book under the new one
        request.user.refresh_from_db(fields=["cache_version"])
    detail = selectors.book_detail(user=request.user, book_id=book_id)
    return private_cache_headers(Response(selectors.render_book(detail, request=request), status=code), None)


def _input(serializer_class, request: Request):
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data


class BookListView(APIView):
    pagination_class = PageNumberPagination
    api_tag = "storybook"

    @extend_schema(operation_id="book_list", responses={200: serializers.BookListItemSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return cached_list_response(
            request, view=self, keys=[selectors.book_list_key(request.user)],
            items=lambda: [selectors.render_list_item(item, request=request)
                           for item in selectors.book_list(user=request.user)])


class BookCreateView(APIView):
    throttle_scope = "tts"
    api_tag = "storybook"

    @extend_schema(operation_id="book_create", request=serializers.BookCreateInputSerializer,
                   responses={202: serializers.BookOutputSerializer},
                   parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)])
    @api_errors(*VOICE_ERRORS, errors.TextTooLong, errors.QuotaExceeded, errors.IdempotencyKeyReused,
                errors.RequestInProgress, errors.ProviderUnavailable)
    def post(self, request: Request) -> Response:
        return idempotent(request, "book_create", lambda: self._create(request))

    def _create(self, request: Request) -> Response:
        data = _input(serializers.BookCreateInputSerializer, request)
        v = data.validated_data
        book = services.book_create(
            user=request.user, title=v["title"], language=v["language"], narrator_voice_id=v["narrator_voice_id"],
            description=v["description"], pages=data.to_pages(),
            idempotency_key=request.headers.get("Idempotency-Key", ""))
        return _book(request, book.pk, code=status.HTTP_202_ACCEPTED, written=True)


class BookDetailView(APIView):
    api_tag = "storybook"

    @extend_schema(operation_id="book_get", responses={200: serializers.BookOutputSerializer})
    @api_errors(errors.BookNotFound)
    def get(self, request: Request, book_id) -> Response:
        return _book(request, book_id)

    @extend_schema(operation_id="book_update", request=serializers.BookUpdateInputSerializer,
                   responses={200: serializers.BookOutputSerializer})
    @api_errors(errors.BookNotFound, *VOICE_ERRORS, errors.TextTooLong, errors.QuotaExceeded)
    def patch(self, request: Request, book_id) -> Response:
        services.book_update(user=request.user, book_id=book_id,
                             **_input(serializers.BookUpdateInputSerializer, request).validated_data)
        return _book(request, book_id, written=True)

    @extend_schema(operation_id="book_delete", responses={204: None})
    @api_errors(errors.BookNotFound)
    def delete(self, request: Request, book_id) -> Response:
        services.book_delete(user=request.user, book_id=book_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BookRetryView(APIView):
    throttle_scope = "tts"
    api_tag = "storybook"

    @extend_schema(operation_id="book_retry", request=None, responses={202: serializers.BookOutputSerializer})
    @api_errors(errors.BookNotFound, *VOICE_ERRORS, errors.QuotaExceeded)
    def post(self, request: Request, book_id) -> Response:
        services.book_retry(user=request.user, book_id=book_id)
        return _book(request, book_id, code=status.HTTP_202_ACCEPTED, written=True)


class BookCancelView(APIView):
    api_tag = "storybook"

    @extend_schema(operation_id="book_cancel", request=None, responses={200: serializers.BookOutputSerializer})
    @api_errors(errors.BookNotFound)
    def post(self, request: Request, book_id) -> Response:
        services.book_cancel(user=request.user, book_id=book_id)
        return _book(request, book_id, written=True)


class PageAddView(APIView):
    api_tag = "storybook"

    @extend_schema(operation_id="book_page_add", request=serializers.PageAddInputSerializer,
                   responses={201: serializers.BookOutputSerializer})
    @api_errors(errors.BookNotFound, *VOICE_ERRORS, errors.TextTooLong, errors.QuotaExceeded)
    def post(self, request: Request, book_id) -> Response:
        v = _input(serializers.PageAddInputSerializer, request).validated_data
        services.page_add(user=request.user, book_id=book_id, text=v["text"],
                          lines=[LineInput(text=li["text"], speaker=li["speaker"], voice_id=li["voice_id"])
                                 for li in v["lines"]])
        return _book(request, book_id, code=status.HTTP_201_CREATED, written=True)


class PageDetailView(APIView):
    api_tag = "storybook"

    @extend_schema(operation_id="book_page_update", request=serializers.PageUpdateInputSerializer,
                   responses={200: serializers.BookOutputSerializer})
    @api_errors(errors.BookNotFound)
    def patch(self, request: Request, book_id, page_id) -> Response:
        services.page_update(user=request.user, book_id=book_id, page_id=page_id,
                             **_input(serializers.PageUpdateInputSerializer, request).validated_data)
        return _book(request, book_id, written=True)

    @extend_schema(operation_id="book_page_delete", responses={204: None})
    @api_errors(errors.BookNotFound)
    def delete(self, request: Request, book_id, page_id) -> Response:
        services.page_delete(user=request.user, book_id=book_id, page_id=page_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LineAddView(APIView):
    api_tag = "storybook"

    @extend_schema(operation_id="book_line_add", request=serializers.LineInputSerializer,
                   responses={201: serializers.BookOutputSerializer})
    @api_errors(errors.BookNotFound, *VOICE_ERRORS, errors.TextTooLong, errors.QuotaExceeded)
    def post(self, request: Request, book_id, page_id) -> Response:
        selectors.book_check_owned(user=request.user, book_id=book_id, page_id=page_id)
        v = _input(serializers.LineInputSerializer, request).validated_data
        services.line_add(user=request.user, book_id=book_id, page_id=page_id,
                          line=LineInput(text=v["text"], speaker=v["speaker"], voice_id=v["voice_id"]))
        return _book(request, book_id, code=status.HTTP_201_CREATED, written=True)


class LineDetailView(APIView):
    api_tag = "storybook"

    @extend_schema(operation_id="book_line_update", request=serializers.LineUpdateInputSerializer,
                   responses={200: serializers.BookOutputSerializer})
    @api_errors(errors.BookNotFound, *VOICE_ERRORS, errors.TextTooLong, errors.QuotaExceeded)
    def patch(self, request: Request, book_id, line_id) -> Response:
        v = dict(_input(serializers.LineUpdateInputSerializer, request).validated_data)
        narrator = "voice_id" in v and v["voice_id"] is None
        services.line_update(user=request.user, book_id=book_id, line_id=line_id, narrator=narrator,
                             voice_id=v.pop("voice_id", None), **v)
        return _book(request, book_id, written=True)

    @extend_schema(operation_id="book_line_delete", responses={204: None})
    @api_errors(errors.BookNotFound)
    def delete(self, request: Request, book_id, line_id) -> Response:
        services.line_delete(user=request.user, book_id=book_id, line_id=line_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


BUILD_POLL_SECONDS = 2
_RETRY_AFTER = OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, response=[202],
                                description="Seconds to wait before asking again.")
_LOCATION = OpenApiParameter("Location", str, OpenApiParameter.HEADER, response=[302],
                             description="The file's signed, expiring URL (no credentials; Range requests).")


def _building() -> Response:
    """202 while a book's files are built: the build is queued, ask again shortly."""
    return Response({"status": "building"}, status=status.HTTP_202_ACCEPTED,
                    headers={"Retry-After": str(BUILD_POLL_SECONDS)})


class BookAudioView(APIView):
    api_tag = "storybook"

    @extend_schema(operation_id="book_audio", parameters=[_RETRY_AFTER],
                   responses={200: serializers.BookAudioSerializer,
                                                          202: serializers.BookAudioBuildingSerializer})
    @api_errors(errors.BookNotFound, errors.ValidationFailed)  # 400: no line has audio yet
    def get(self, request: Request, book_id) -> Response:
        audio = services.book_audio(user=request.user, book_id=book_id)
        if audio is None:
            return _building()
        return Response({"status": "ready", "audio_url": clip_url(request=request, clip_id=audio["clip_id"])[0],
                         "duration_ms": audio["duration_ms"], "pages": audio["pages"]})


class _AnyAccept(DefaultContentNegotiation):
    """An export's answer is JSON about the file (the file itself is at the signed URL), so an
    Accept header asking for the file's own type is not refused."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type


def _export_responses(media_type: str) -> dict:
    return {
        302: OpenApiResponse(serializers.BookExportReadySerializer,
                             description=f"Built: `Location` is the file ({media_type}), signed and expiring, "
                                         "with Range support; the body says the same."),
        202: OpenApiResponse(serializers.BookAudioBuildingSerializer,
                             description="Being built (queued now if it was not): ask again after `Retry-After` "
                                         "seconds."),
    }


class _BookExportView(APIView):
    kind: str
    api_tag = "storybook"
    content_negotiation_class = _AnyAccept

    def _answer(self, request: Request, book_id, *, page: int = 0) -> Response:
        export = exports.book_export_get(user=request.user, book_id=book_id, kind=self.kind, page=page)
        if export is None:
            return _building()
        url, expires = export_url(request=request, export=export)
        body = serializers.BookExportReadySerializer({"status": "ready", "url": url, "expires_at": expires,
                                                      "content_type": export.mime_type,
                                                      "size_bytes": export.size_bytes}).data
        response = Response(body, status=status.HTTP_302_FOUND, headers={"Location": url})
        response["Cache-Control"] = "private, no-store"  # a signed link is made for this answer only
        return response


EXPORT_ERRORS = (errors.BookNotFound, errors.BookNotReady)


class BookReadAlongView(_BookExportView):
    kind = "vtt"

    @extend_schema(operation_id="book_read_along", parameters=[serializers.ReadAlongQuerySerializer, _LOCATION, _RETRY_AFTER],
                   responses=_export_responses("text/vtt"),
                   description="WebVTT read-along: one cue per line, a karaoke timestamp before each word, times on "
                               "the whole-book audio's clock (`GET .../audio`).")
    @api_errors(*EXPORT_ERRORS, errors.ValidationFailed)
    def get(self, request: Request, book_id) -> Response:
        query = serializers.ReadAlongQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return self._answer(request, book_id, page=query.validated_data.get("page", 0))


class BookEpubView(_BookExportView):
    kind = "epub"

    @extend_schema(operation_id="book_export_epub", parameters=[_LOCATION, _RETRY_AFTER], responses=_export_responses("application/epub+zip"),
                   description="EPUB 3 with Media Overlays: readers highlight each word as it is read.")
    @api_errors(*EXPORT_ERRORS)
    def get(self, request: Request, book_id) -> Response:
        return self._answer(request, book_id)


class BookM4bView(_BookExportView):
    kind = "m4b"

    @extend_schema(operation_id="book_export_m4b", parameters=[_LOCATION, _RETRY_AFTER], responses=_export_responses("audio/mp4"),
                   description="The whole book as an audiobook: AAC in MP4, one chapter per page, cover art.")
    @api_errors(*EXPORT_ERRORS)
    def get(self, request: Request, book_id) -> Response:
        return self._answer(request, book_id)


class BookBundleView(_BookExportView):
    kind = "bundle"

    @extend_schema(operation_id="book_bundle", parameters=[_LOCATION, _RETRY_AFTER], responses=_export_responses("application/zip"),
                   description="Offline bundle: manifest.json (format storybook-bundle, version 1), every line's "
                               "audio and the pictures.")
    @api_errors(*EXPORT_ERRORS)
    def get(self, request: Request, book_id) -> Response:
        return self._answer(request, book_id)


def _image(upload) -> UploadedImage:
    return UploadedImage(filename=upload.name or "image", data=upload.read())


class BookCreateWithImagesView(BookCreateView):
    parser_classes = [MultiPartParser]

    @extend_schema(operation_id="book_create_with_images",
                   request={"multipart/form-data": serializers.BookCreateMultipartSerializer},
                   responses={202: serializers.BookOutputSerializer},
                   parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)])
    @api_errors(*VOICE_ERRORS, errors.InvalidImage, errors.MalformedJson, errors.RequestTooLarge, errors.TextTooLong, errors.QuotaExceeded,
                errors.IdempotencyKeyReused, errors.RequestInProgress, errors.ProviderUnavailable)
    def post(self, request: Request) -> Response:
        return idempotent(request, "book_create_with_images", lambda: self._create_with_images(request))

    def _create_with_images(self, request: Request) -> Response:
        form = _input(serializers.BookCreateMultipartSerializer, request).validated_data
        data = serializers.BookCreateInputSerializer(data=form["payload"])
        data.is_valid(raise_exception=True)
        v = data.validated_data
        book = services.book_create(
            user=request.user, title=v["title"], language=v["language"], narrator_voice_id=v["narrator_voice_id"],
            description=v["description"], pages=data.to_pages(),
            idempotency_key=request.headers.get("Idempotency-Key", ""),
            images=[_image(f) for f in form["images"]], cover=_image(form["cover"]) if form.get("cover") else None)
        return _book(request, book.pk, code=status.HTTP_202_ACCEPTED, written=True)


class BookCoverView(APIView):
    parser_classes = [MultiPartParser]
    api_tag = "storybook"

    @extend_schema(operation_id="book_cover_set", request={"multipart/form-data": serializers.ImageInputSerializer},
                   responses={200: serializers.BookOutputSerializer})
    @api_errors(errors.BookNotFound, errors.InvalidImage, errors.RequestTooLarge)
    def put(self, request: Request, book_id) -> Response:
        selectors.book_check_owned(user=request.user, book_id=book_id)
        upload = _input(serializers.ImageInputSerializer, request).validated_data["image"]
        services.book_cover_set(user=request.user, book_id=book_id, image=_image(upload))
        return _book(request, book_id, written=True)


class PageImageView(APIView):
    parser_classes = [MultiPartParser]
    api_tag = "storybook"

    @extend_schema(operation_id="book_page_image_set", request={"multipart/form-data": serializers.ImageInputSerializer},
                   responses={200: serializers.BookOutputSerializer})
    @api_errors(errors.BookNotFound, errors.InvalidImage, errors.RequestTooLarge)
    def put(self, request: Request, book_id, page_id) -> Response:
        selectors.book_check_owned(user=request.user, book_id=book_id, page_id=page_id)
        upload = _input(serializers.ImageInputSerializer, request).validated_data["image"]
        services.page_image_set(user=request.user, book_id=book_id, page_id=page_id, image=_image(upload))
        return _book(request, book_id, written=True)
