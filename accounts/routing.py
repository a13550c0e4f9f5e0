from django.urls import path, re_path

from .consumers import EventStreamConsumer, websocket_not_found

websocket_urlpatterns = [
    path("ws/events/", EventStreamConsumer.as_asgi()),
    re_path(r"", websocket_not_found),  # every other path: refused cleanly
]
