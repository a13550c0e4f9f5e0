"""The application every server of the project runs (`make serve`, `make run`, the tests' live
servers): websockets go to Channels, HTTP to Django's WSGI handler on a pool of WEB_THREADS
threads (a2wsgi). The views are sync DRF views and WhiteNoise is sync-only: under Django's own
ASGI handler each request hops between the event loop and threads several times, which the
benchmark measured at twice the CPU per cached read of the WSGI handler (README, "Serving")."""

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


def _router(http_app) -> ProtocolTypeRouter:
    return ProtocolTypeRouter(
        {
            # The 413 guard sits in front of either handler: it answers before a byte of the body is read.
            "http": BodySizeLimitMiddleware(http_app),
            # Origin is checked by the consumer itself: token clients may omit it, cookies need it.
            "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
        }
    )


application = _router(WSGIMiddleware(get_wsgi_application(), workers=settings.WEB_THREADS))

# Django's own ASGI handler for HTTP, the design `application` replaced: the benchmark serves it
# beside `application` so the comparison is measured in every run.
django_handler_application = _router(django_asgi_app)
