"""Explicit request and response shapes of the storybook API (the response shapes document the
cached dicts the selectors render)."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api import fields
from config.api.parsers import json_loads_limited
from tts.models import SpeechJob
from tts.serializers import JobErrorSerializer, WordSerializer

from .models import Book, GenerationBatch
from .services import LineInput, PageInput

TEXT_MAX = 5000  # a line or a page; the book as a whole is capped by STORYBOOK_MAX_CHARACTERS


class LineInputSerializer(serializers.Serializer):
    speaker = fields.CharField(max_length=100, required=False, allow_blank=True, default="")
    text = fields.CharField(max_length=TEXT_MAX)
    voice_id = serializers.UUIDField(required=False, allow_null=True, default=None)


class PageInputSerializer(serializers.Serializer):
    text = fields.CharField(max_length=TEXT_MAX, required=False, allow_blank=True, default="")
    lines = LineInputSerializer(many=True, max_length=settings.STORYBOOK_MAX_LINES_PER_PAGE)


class BookCreateInputSerializer(serializers.Serializer):
    title = fields.CharField(max_length=200)
    language = fields.CharField(max_length=16, required=False, allow_blank=True, default="")
    narrator_voice_id = serializers.UUIDField()
    description = fields.CharField(max_length=1000, required=False, allow_blank=True, default="")
    pages = PageInputSerializer(many=True, min_length=1, max_length=settings.STORYBOOK_MAX_PAGES)

    def to_pages(self) -> list[PageInput]:
        return [PageInput(text=p["text"], lines=[LineInput(text=li["text"], speaker=li["speaker"],
                                                           voice_id=li["voice_id"]) for li in p["lines"]])
                for p in self.validated_data["pages"]]


class BookUpdateInputSerializer(serializers.Serializer):
    title = fields.CharField(max_length=200, required=False)
    description = fields.CharField(max_length=1000, required=False, allow_blank=True)
    narrator_voice_id = serializers.UUIDField(required=False)


class PageUpdateInputSerializer(serializers.Serializer):
    text = fields.CharField(max_length=TEXT_MAX, required=False, allow_blank=True)
    number = serializers.IntegerField(min_value=1, required=False)


class PageAddInputSerializer(serializers.Serializer):
    text = fields.CharField(max_length=TEXT_MAX, required=False, allow_blank=True, default="")
    lines = LineInputSerializer(many=True, required=False, default=list,
                                max_length=settings.STORYBOOK_MAX_LINES_PER_PAGE)


class LineUpdateInputSerializer(serializers.Serializer):
    text = fields.CharField(max_length=TEXT_MAX, required=False)
    speaker = fields.CharField(max_length=100, required=False, allow_blank=True)
    voice_id = serializers.UUIDField(required=False, allow_null=True,
                                     help_text="null hands the line back to the book's narrator")
    order = serializers.IntegerField(min_value=1, required=False)


class LineOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    order = serializers.IntegerField()
    speaker = serializers.CharField()
    text = serializers.CharField()
    voice_id = serializers.UUIDField(allow_null=True, help_text="null: the narrator reads it")
    status = serializers.ChoiceField(choices=SpeechJob.Status.choices, help_text="Its narration job's status")
    audio_url = serializers.URLField(allow_null=True, help_text="Signed, expiring; serves Range requests")
    duration_ms = serializers.IntegerField(allow_null=True)
    words = WordSerializer(many=True)
    error = JobErrorSerializer(allow_null=True)


class PageOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    number = serializers.IntegerField()
    text = serializers.CharField()
    image_url = serializers.URLField(allow_null=True)
    lines = LineOutputSerializer(many=True)


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    total = serializers.IntegerField()


class BatchOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=GenerationBatch.Kind.choices)
    total = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class _BookFields(serializers.Serializer):
    """What the list item and the detail both show."""

    id = serializers.UUIDField()
    title = serializers.CharField()
    description = serializers.CharField()
    language = serializers.CharField()
    status = serializers.ChoiceField(choices=Book.Status.choices)
    progress = ProgressSerializer()
    narrator_voice_id = serializers.UUIDField(allow_null=True)
    cover_url = serializers.URLField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class BookOutputSerializer(_BookFields):
    pages = PageOutputSerializer(many=True)
    batches = BatchOutputSerializer(many=True)


class BookListItemSerializer(_BookFields):
    page_count = serializers.IntegerField()


class AudioLineSerializer(serializers.Serializer):
    line_id = serializers.UUIDField()
    start_ms = serializers.IntegerField()
    end_ms = serializers.IntegerField()


class AudioPageSerializer(serializers.Serializer):
    page_id = serializers.UUIDField()
    number = serializers.IntegerField()
    start_ms = serializers.IntegerField()
    lines = AudioLineSerializer(many=True)


class BookAudioSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ready"])
    audio_url = serializers.URLField(help_text="Signed, expiring; serves Range requests")
    duration_ms = serializers.IntegerField()
    pages = AudioPageSerializer(many=True)


class BookAudioBuildingSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["building"])


class BookExportReadySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ready"])
    url = serializers.URLField(help_text="The file: signed, expiring, no credentials needed; serves Range requests. "
                                         "Also the Location of this 302.")
    expires_at = serializers.DateTimeField()
    content_type = serializers.CharField()
    size_bytes = serializers.IntegerField()


class ReadAlongQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(required=False, min_value=1,
                                    help_text="One page's cues (still on the whole-book audio's clock); a page "
                                              "past the last is 404.")


@extend_schema_field(OpenApiTypes.STR)
class JsonPayloadField(serializers.Field):
    """The `payload` part of a multipart request: the same JSON as `POST /storybook/create`
    (nesting limited like a JSON body)."""

    def to_internal_value(self, data):
        if hasattr(data, "read"):  # sent as a file part
            data = data.read()
        if not isinstance(data, (str, bytes)):
            raise serializers.ValidationError("Send the book as JSON text.")
        return json_loads_limited(data)

    def to_representation(self, value):
        return value


# Files per request are capped (DATA_UPLOAD_MAX_NUMBER_FILES; past it a request is 413): the page
# images of one request leave room for the cover and one more, so a request one image over this
# limit is a 400 naming it. Bigger books add page images with PUT .../pages/{id}/image.
IMAGES_PER_REQUEST = min(settings.STORYBOOK_MAX_PAGES, settings.DATA_UPLOAD_MAX_NUMBER_FILES - 2)


class BookCreateMultipartSerializer(serializers.Serializer):
    payload = JsonPayloadField(help_text="The JSON body of POST /storybook/create, as a string")
    images = serializers.ListField(child=serializers.FileField(), required=False, default=list,
                                   max_length=IMAGES_PER_REQUEST,
                                   help_text=f"One per page, in page order (at most {IMAGES_PER_REQUEST} per request)")
    cover = serializers.FileField(required=False)


class ImageInputSerializer(serializers.Serializer):
    image = serializers.FileField()
