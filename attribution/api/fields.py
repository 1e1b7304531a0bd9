"""Serializer fields shared by the three apps' APIs."""

from __future__ import annotations

from rest_framework import serializers


class SlugRelatedField(serializers.SlugRelatedField):
    """DRF's SlugRelatedField, refusing text Postgres cannot compare.

    DRF looks the slug up as sent; a NUL character reaches Postgres, which raises DataError (a 500)
    instead of the field's 400. CharField has ProhibitNullCharactersValidator for this; the related
    field has none, so it is checked here, before the query.
    """

    default_error_messages = {"null_characters": "Null characters are not allowed."}

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("null_characters")
        return super().to_internal_value(data)
