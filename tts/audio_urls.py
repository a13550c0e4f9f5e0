"""Signed, expiring audio URLs: an <audio> tag or a phone player fetches a clip without an auth
header. The token signs the clip id and the expiry together (Django's signing), so any change to
either is refused."""

from datetime import datetime
from uuid import UUID

from django.urls import reverse

from config.api.signed import sign, unsign

SALT = "tts.audio"


def clip_url(*, request=None, clip_id: UUID, ttl_seconds: int | None = None) -> tuple[str, datetime]:
    """The signed URL of a clip and when it expires; absolute when a request is given."""
    token, expires = sign(salt=SALT, value=str(clip_id), ttl_seconds=ttl_seconds)
    path = reverse("audio-file", kwargs={"token": token})
    return (request.build_absolute_uri(path) if request is not None else path), expires


def clip_id_from_token(token: str) -> UUID | None:
    """The clip a valid, unexpired token names; None for anything else."""
    value = unsign(salt=SALT, token=token)
    try:
        return UUID(value) if value else None
    except ValueError:
        return None
