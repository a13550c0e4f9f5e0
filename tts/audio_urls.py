"""Signed, expiring audio URLs: an <audio> tag or a phone player fetches a clip without an auth
header. The token signs the clip id and the expiry together (Django's signing), so any change to
either is refused."""

from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

SALT = "tts.audio"


def clip_url(*, request=None, clip_id: UUID, ttl_seconds: int | None = None) -> tuple[str, datetime]:
    """The signed URL of a clip and when it expires; absolute when a request is given."""
    expires = timezone.now() + timedelta(seconds=ttl_seconds or settings.TTS_AUDIO_URL_TTL_SECONDS)
    token = signing.dumps({"c": str(clip_id), "e": int(expires.timestamp())}, salt=SALT, compress=True)
    path = reverse("audio-file", kwargs={"token": token})
    return (request.build_absolute_uri(path) if request is not None else path), expires


def clip_id_from_token(token: str) -> UUID | None:
    """The clip a valid, unexpired token names; None for anything else."""
    try:
        payload = signing.loads(token, salt=SALT)
        if int(payload["e"]) < timezone.now().timestamp():
            return None
        return UUID(payload["c"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
