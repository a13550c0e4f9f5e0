"""The OpenAPI contract: every operation documents the errors it can answer with.

`ApiSchema` (DEFAULT_SCHEMA_CLASS) adds, to what drf-spectacular derives from the views, the
error responses that follow from how a view is built (a body: 400/413/415; a path id: 404;
authentication: 401/403; throttling: 429 with Retry-After) plus the catalogue errors a view
method declares with `@api_errors(...)`. Each error status has one component listing the
catalogue's codes for it. String inputs document that NUL characters are refused, as DRF does.
"""

from collections import defaultdict
from collections.abc import Callable

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from . import errors

_ERRORS_ATTR = "_api_errors"


def api_errors(*classes: type[errors.ServiceError]) -> Callable:
    """Declare the catalogue errors a view method answers with beyond the ones its shape implies."""

    def mark(method: Callable) -> Callable:
        setattr(method, _ERRORS_ATTR, tuple(getattr(method, _ERRORS_ATTR, ())) + classes)
        return method

    return mark


def _codes_by_status() -> dict[int, list[str]]:
    by_status: dict[int, list[str]] = defaultdict(list)
    for code, cls in errors.CATALOGUE.items():
        by_status[cls.status].append(code)
    return by_status


RETRY_AFTER = {"schema": {"type": "integer", "minimum": 1},
               "description": "Seconds to wait before retrying."}
# Statuses whose answers carry Retry-After (throttles, lockouts, provider outages).
RETRY_AFTER_STATUSES = {429, 503}
# A string the API accepts never holds NUL (DRF refuses it: "Null characters are not allowed").
NO_NUL = "^[^\\x00]*$"


class ApiSchema(AutoSchema):
    def _error_classes(self) -> set[type[errors.ServiceError]]:
        view, method = self.view, self.method.lower()
        found: set[type[errors.ServiceError]] = {errors.Throttled}
        found |= set(getattr(getattr(view, method, None), _ERRORS_ATTR, ()))
        if not any(isinstance(p, AllowAny) for p in view.get_permissions()):
            found |= {errors.NotAuthenticated, errors.PermissionDenied}
        if self.method in ("POST", "PUT", "PATCH"):
            found |= {errors.ValidationFailed, errors.RequestTooLarge, errors.UnsupportedMediaType,
                      errors.MalformedJson if "multipart" not in self.map_parsers()[0] else errors.MalformedRequest}
        if "{" in self.path:
            found.add(errors.NotFound)
        if self.method == "GET" and getattr(view, "pagination_class", None) is not None:
            found |= {errors.ValidationFailed, errors.NotFound}  # bad page / page_size, page past the end
        return found

    def _error_component(self, status: int) -> dict:
        """One component per status, listing the catalogue's codes (registered once)."""
        name = f"Error{status}"
        schema = {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string", "enum": _codes_by_status()[status]},
                        "message": {"type": "string"},
                        "details": {"type": "object", "additionalProperties": True},
                    },
                    "required": ["code", "message", "details"],
                }
            },
            "required": ["error"],
        }
        self.registry.register_on_missing(
            ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema))
        return {"$ref": f"#/components/schemas/{name}"}

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        by_status: dict[int, list[str]] = defaultdict(list)
        for cls in self._error_classes():
            by_status[cls.status].append(cls.code)
        for status, codes in sorted(by_status.items()):
            if str(status) in responses:
                continue
            response = {
                "description": "Error codes: " + ", ".join(f"`{c}`" for c in sorted(codes)),
                "content": {"application/json": {"schema": self._error_component(status)}},
            }
            if status in RETRY_AFTER_STATUSES:
                response["headers"] = {"Retry-After": RETRY_AFTER}
            responses[str(status)] = response
        return responses

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (direction == "request" and isinstance(field, serializers.CharField)
                and not isinstance(field, serializers.ChoiceField) and schema.get("type") == "string"
                and "pattern" not in schema and "format" not in schema):
            schema["pattern"] = NO_NUL
        return schema

    def get_tags(self) -> list[str]:
        return [getattr(self.view, "api_tag", None) or super().get_tags()[0]]


def filter_parameters(filterset_class) -> list:
    """OpenAPI query parameters for a django-filter FilterSet used by a plain APIView (which
    drf-spectacular's filter extension does not see)."""
    import django_filters
    from drf_spectacular.utils import OpenApiParameter

    parameters = []
    for name, declared in filterset_class.base_filters.items():
        if isinstance(declared, django_filters.BooleanFilter):
            parameters.append(OpenApiParameter(name, bool, description=declared.label or ""))
        elif isinstance(declared, django_filters.ChoiceFilter):
            # An empty value means "no filter", as django-filter reads it.
            choices = ["", *(value for value, _ in declared.extra["choices"])]
            parameters.append(OpenApiParameter(name, str, enum=choices, description=declared.label or ""))
        else:
            parameters.append(OpenApiParameter(name, str))
    return parameters
