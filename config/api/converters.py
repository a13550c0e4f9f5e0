"""Path converters: ids in URLs match case-insensitively (Swift's `uuidString` is upper-case)."""

import uuid

from django.urls import register_converter


class UUIDConverter:
    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_url(self, value) -> str:
        return str(value)


register_converter(UUIDConverter, "id")
