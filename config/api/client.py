"""The client's address, one rule for throttles and the login guard (NUM_PROXIES)."""

from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle


def client_address(request: HttpRequest) -> str:
    # DRF's rule: the socket's address, or with NUM_PROXIES the address that many hops back in
    # X-Forwarded-For. Used by DRF throttles as is, and by django-axes through this function.
    return BaseThrottle().get_ident(request)
