"""The browsable API's root: every endpoint under /api/v1, found from the URL configuration, so
a route an app adds is listed without anyone remembering to."""

import re

from django.urls import URLPattern, URLResolver
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


def _walk(patterns, prefix: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and entry.name:
            yield entry.name, prefix + str(entry.pattern)


class ApiRootView(APIView):
    permission_classes = [AllowAny]
    base_path = "/api/v1/"

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        from config.urls import api_v1

        base = request.build_absolute_uri(self.base_path)
        links = {}
        for name, route in _walk(api_v1):
            if not route:
                continue  # this page
            # `tts/voices/<id:voice_id>` -> `tts/voices/{voice_id}`
            template = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
            links[name.replace("-", "_")] = base + template
        links["schema"] = request.build_absolute_uri("/api/schema/")
        links["docs"] = request.build_absolute_uri("/api/docs/")
        links["events"] = request.build_absolute_uri("/ws/events/").replace("http", "ws", 1)
        return Response(links)
