"""Serializers of the routing API. Gateway credentials (token_hash) and push settings are never
published; the token prefix is, because it is what identifies a token in logs."""

from __future__ import annotations

from rest_framework import serializers

from attribution.api.fields import SlugRelatedField
from routing.models import Gateway, PolicyDocument


class GatewaySerializer(serializers.ModelSerializer):
    served_models = SlugRelatedField(slug_field="slug", many=True, read_only=True)

    class Meta:
        model = Gateway
        fields = [
            "id",
            "slug",
            "name",
            "kind",
            "served_models",
            "token_prefix",
            "last_seen_at",
            "applied_version",
            "created_at",
        ]
        read_only_fields = fields


class PolicyDocumentSerializer(serializers.ModelSerializer):
    gateway = SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = PolicyDocument
        fields = ["id", "gateway", "version", "content", "content_hash", "created_at"]
        read_only_fields = fields
