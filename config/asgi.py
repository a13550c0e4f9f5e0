"""The application every server of the project runs (`make serve`, `make run`, the tests' live
servers). Websockets go to Channels. HTTP bodies are read on the event loop first (the 413 guard),
then requests go to Django's WSGI handler on a pool of WEB_THREADS threads (a2wsgi): the views
are sync DRF views and WhiteNoise is sync-only, and under Django's own ASGI handler each request
hopped between the event loop and threads several times, measured at up to 1.5x the CPU per
cached read (README, "Serving"). Files (signed links and static files) still go to Django's ASGI
handler, which sends them from the event loop: a slow or stalled reader then holds a socket, not
one of the threads every other request needs."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()  # set up Django before importing consumers

from a2wsgi import WSGIMiddleware  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

from accounts.routing import websocket_urlpatterns  # noqa: E402
from config.api.middleware import BodySizeLimitMiddleware  # noqa: E402
from config.urls import FILE_LINK_FOLDERS  # noqa: E402


class HttpRouter:
    """File paths to Django's ASGI handler, everything else to the WSGI handler on threads."""

    def __init__(self, *, threads, files) -> None:
        self.threads, self.files = threads, files
        self.file_prefixes = (*(f"/{folder}/" for folder in FILE_LINK_FOLDERS), "/" + settings.STATIC_URL.lstrip("/"))

    async def __call__(self, scope, receive, send) -> None:
        if scope["path"].startswith(self.file_prefixes):
            await self.files(scope, receive, send)
        else:
            await self.threads(_cookies_joined(scope), receive, send)


def _cookies_joined(scope: dict) -> dict:
    """Several Cookie headers (HTTP/2 clients send them so) become one joined with "; ", as
    Django's ASGI handler joins them; a2wsgi would join them with ",", which no parser splits."""
    cookies = [value for name, value in scope["headers"] if name == b"cookie"]
    if len(cookies) < 2:
        return scope
    headers = [(name, value) for name, value in scope["headers"] if name != b"cookie"]
    return {**scope, "headers": [*headers, (b"cookie", b"; ".join(cookies))]}


def _router(http_app) -> ProtocolTypeRouter:
    return ProtocolTypeRouter(
        {
            "http": BodySizeLimitMiddleware(http_app),
            # Origin is checked by the consumer itself: token clients may omit it, cookies need it.
            "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
        }
    )


application = _router(HttpRouter(threads=WSGIMiddleware(get_wsgi_application(), workers=settings.WEB_THREADS),
                                 files=django_asgi_app))

# Django's own ASGI handler for all HTTP, the design `application` replaced: the benchmark serves
# it beside `application` so the comparison is measured in every run.
django_handler_application = _router(django_asgi_app)
