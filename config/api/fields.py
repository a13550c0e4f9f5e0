"""Serializer fields that take only what the schema says: a string field refuses numbers and
booleans (DRF would turn `0` into `"0"`), so the OpenAPI contract and the server agree."""

from rest_framework import serializers


class StrictString:
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class CharField(StrictString, serializers.CharField):
    pass


class EmailField(StrictString, serializers.EmailField):
    pass


class BooleanField(serializers.BooleanField):
    """JSON true or false only (DRF would also take 0, 1, "yes", ...)."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class FloatField(serializers.FloatField):
    """A JSON number only (DRF would also take the string "0.5")."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)
