"""Signed, expiring tokens for links that carry no credentials (an <audio> or <img> tag fetches
them): Django's signing over the value and the expiry together, so a change to either is refused."""

from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.utils import timezone


def sign(*, salt: str, value: str, ttl_seconds: int | None = None) -> tuple[str, datetime]:
    """A token for `value` and when it expires (TTS_AUDIO_URL_TTL_SECONDS unless given)."""
    expires = timezone.now() + timedelta(seconds=ttl_seconds or settings.TTS_AUDIO_URL_TTL_SECONDS)
    return signing.dumps({"v": value, "e": int(expires.timestamp())}, salt=salt, compress=True), expires


def unsign(*, salt: str, token: str) -> str | None:
    """The value of a valid, unexpired token; None for anything else."""
    try:
        payload = signing.loads(token, salt=salt)
        if int(payload["e"]) < timezone.now().timestamp():
            return None
        return str(payload["v"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
