"""Request parsers every API view uses."""

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError


def _depth_exceeds(data, limit: int) -> bool:
    # Iterative, so a deep document cannot exhaust the stack here either.
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def json_loads_limited(raw: str | bytes):
    """JSON text that arrived outside a JSON body (a multipart `payload` part), under the same
    nesting limit; 400 `malformed_json` for anything else."""
    import json

    from .errors import MalformedJson

    try:
        data = json.loads(raw)
    except RecursionError:
        raise MalformedJson(f"JSON parse error - nested deeper than {settings.JSON_MAX_DEPTH} levels.") from None
    except (ValueError, TypeError) as exc:
        raise MalformedJson(f"JSON parse error - {exc}") from None
    if _depth_exceeds(data, settings.JSON_MAX_DEPTH):
        raise MalformedJson(f"JSON parse error - nested deeper than {settings.JSON_MAX_DEPTH} levels.")
    return data


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, plus a nesting limit: `{"a":` fifty thousand times is a 400
    `malformed_json`, not a RecursionError (500) in the decoder or in whatever walks the data."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {settings.JSON_MAX_DEPTH} levels.") from None
        if _depth_exceeds(data, settings.JSON_MAX_DEPTH):
            raise ParseError(f"JSON parse error - nested deeper than {settings.JSON_MAX_DEPTH} levels.")
        return data
