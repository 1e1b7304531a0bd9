"""Slugs of served models and deployments.

Model names carry versions with dots (`llama-3.1-70b`, `mistral-7b-v0.3`), and the slug is what
gateways, billing tags and mapping rules use to name them, so these slugs may hold dots as well as
Django's slug characters (letters, digits, hyphens, underscores). They never start with a dot and
never hold two in a row, so a slug is never `.`, `..` or a path segment a client would collapse.
Teams and cloud accounts keep Django's plain slugs.
"""

from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError

_DIMENSION_SLUG = re.compile(r"^[-a-zA-Z0-9_](?:[-a-zA-Z0-9_]|\.(?!\.))*\Z")


def validate_dimension_slug(value: str) -> None:
    """A function, not a RegexValidator: migrations then refer to it instead of copying the pattern."""
    if not isinstance(value, str) or not _DIMENSION_SLUG.match(value):
        raise ValidationError(
            "Enter a valid slug: letters, digits, hyphens, underscores and dots (not first, not two in "
            "a row), e.g. llama-3.1-70b.",
            code="invalid",
        )


def dimension_slugify(value: str) -> str:
    """A model's slug made from its name: like django.utils.text.slugify, but dots stay
    (`Llama 3.1 70B Instruct` -> `llama-3.1-70b-instruct`)."""
    value = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s.-]", "", value.lower())
    value = re.sub(r"[-\s]+", "-", value)
    value = re.sub(r"\.{2,}", ".", value)
    return value.strip("-_.")
