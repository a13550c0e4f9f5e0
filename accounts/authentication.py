import binascii
from hmac import compare_digest

from django.utils import timezone
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.settings import CONSTANTS
from rest_framework import exceptions

from .models import DeviceToken, User


def user_for_token_key(key: str) -> tuple[User, DeviceToken] | None:
    """The active user and token for a raw token string, in one query; None if invalid.

    Unlike knox, this never deletes other expired tokens here (that sweep costs a query per
    request); `accounts.tasks.purge_expired_tokens` does it daily.
    """
    if not key:
        return None
    now = timezone.now()
    candidates = DeviceToken.objects.filter(token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH]).select_related("user")
    for token in candidates:
        if token.expiry is not None and token.expiry < now:
            continue
        try:
            digest = hash_token(key)
        except (TypeError, binascii.Error, ValueError):
            return None
        if compare_digest(digest, token.digest) and token.user.is_active:
            return token.user, token
    return None


class TokenAuthentication(KnoxTokenAuthentication):
    """`Authorization: Token <key>`: one query (token joined with its user), no sweeps."""

    def authenticate_credentials(self, token: bytes):
        found = user_for_token_key(token.decode("utf-8", errors="replace"))
        if found is None:
            raise exceptions.AuthenticationFailed("Invalid or expired token.")
        return found
