"""The client's address: one rule for throttles and the login guard.

The server the project starts resolves proxies: with NUM_PROXIES > 0 uvicorn takes
X-Forwarded-For from the addresses in FORWARDED_ALLOW_IPS only, and sets the connection's client
address from it; otherwise it ignores proxy headers. So the application reads REMOTE_ADDR and
never a header a client could write itself (DRF's throttles are configured the same way:
REST_FRAMEWORK["NUM_PROXIES"] = 0)."""

import ipaddress

from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    address = request.META.get("REMOTE_ADDR")
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        return None
