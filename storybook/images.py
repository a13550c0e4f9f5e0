"""Uploaded book images, decoded with Pillow before anything is stored: a renamed text file, a
truncated file or a decompression bomb (a small file declaring a huge picture) is 400
`invalid_image`. Stored names come from ids, never from the client's file name. Images are served
by signed, expiring URLs (`/images/<token>`), like audio."""

import io
import uuid
import warnings
from dataclasses import dataclass
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_safe
from PIL import Image, UnidentifiedImageError

from config.api import errors
from config.api.errors import InvalidImage, RequestTooLarge, error_response
from config.api.signed import sign, unsign

SALT = "storybook.image"
FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "WEBP": ("webp", "image/webp"),
           "GIF": ("gif", "image/gif")}


@dataclass(frozen=True)
class UploadedImage:
    filename: str
    data: bytes


def _invalid(image: UploadedImage, reason: str) -> InvalidImage:
    return InvalidImage(f"{image.filename[:100]}: {reason}.", details={
        "file": image.filename[:100], "reason": reason, "accepted_formats": sorted(FORMATS),
        "max_pixels": settings.STORYBOOK_IMAGE_MAX_PIXELS, "max_bytes": settings.STORYBOOK_IMAGE_MAX_BYTES})


def image_validate(image: UploadedImage) -> str:
    """The file's extension once it decoded completely within the caps."""
    if len(image.data) > settings.STORYBOOK_IMAGE_MAX_BYTES:
        raise RequestTooLarge(f"{image.filename[:100]} is larger than {settings.STORYBOOK_IMAGE_MAX_BYTES} bytes.",
                              details={"file": image.filename[:100], "max_bytes": settings.STORYBOOK_IMAGE_MAX_BYTES})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(image.data)) as img:
                fmt = img.format
                width, height = img.size  # from the header: checked before any pixel is decoded
                if width * height > settings.STORYBOOK_IMAGE_MAX_PIXELS:
                    raise _invalid(image, f"{width}x{height} is more than {settings.STORYBOOK_IMAGE_MAX_PIXELS} pixels")
                if fmt not in FORMATS:
                    raise _invalid(image, f"format {fmt} is not accepted")
                img.load()  # every pixel: a truncated or corrupt file fails here
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard fired while reading the header: far past the cap.
        raise _invalid(image, f"the image is more than {settings.STORYBOOK_IMAGE_MAX_PIXELS} pixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _invalid(image, "the file is not a readable image") from exc
    return FORMATS[fmt][0]


def stored_image(name: str) -> tuple[bytes, str, str]:
    """(bytes, extension, media type) of a stored image, the type read from its bytes (every
    stored image was decoded on upload, so it is one of FORMATS)."""
    with default_storage.open(name, "rb") as f:
        data = f.read()
    with Image.open(io.BytesIO(data)) as img:
        fmt = img.format
    if fmt not in FORMATS:
        raise ValueError(f"{name}: stored image in format {fmt}")
    return data, *FORMATS[fmt]


# Book covers and page pictures are stored here, one folder per book (not under the image
# fields' upload_to); storage hygiene walks it too.
IMAGES_FOLDER = "book-images"


def book_images_folder(book_id) -> str:
    return f"{IMAGES_FOLDER}/{book_id}"


def image_store(image: UploadedImage, *, folder: str) -> str:
    extension = image_validate(image)
    return default_storage.save(f"{folder}/{uuid.uuid4().hex}.{extension}", ContentFile(image.data))


def image_url(*, request, name: str | None) -> str | None:
    if not name:
        return None
    path = reverse("image-file", kwargs={"token": sign(salt=SALT, value=name)[0]})
    return request.build_absolute_uri(path) if request is not None else path


@require_safe
def image_file(request: HttpRequest, token: str) -> HttpResponse:
    """An image by its signed URL (an <img> tag needs no auth header)."""
    name = unsign(salt=SALT, token=token)
    if not name or not default_storage.exists(name):
        return error_response(errors.NotFound("This image link is invalid or has expired."))
    extension = name.rsplit(".", 1)[-1]
    content_type = next((mime for ext, mime in FORMATS.values() if ext == extension), "application/octet-stream")
    return FileResponse(default_storage.open(name, "rb"), content_type=content_type)
