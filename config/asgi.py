import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()  # set up Django before importing consumers

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.routing import websocket_urlpatterns  # noqa: E402
from config.api.middleware import BodySizeLimitMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodySizeLimitMiddleware(django_asgi_app),
        # Origin is checked by the consumer itself: token clients may omit it, cookies need it.
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)
