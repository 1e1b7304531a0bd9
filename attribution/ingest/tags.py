"""Tag key normalisation shared by every provider: `user:Team `, `resourceTags/user:team` and
`resource_tags_user_team` all become `team`, so one attribution rule covers all clouds."""

from __future__ import annotations

from functools import lru_cache

_PREFIXES = ("resourcetags/user:", "resource_tags_user_", "user:")


@lru_cache(maxsize=4096)
def tag_key_normalize(key: str) -> str:
    normalized = key.strip().lower()
    for prefix in _PREFIXES:
        if normalized.startswith(prefix):
            normalized = normalized[len(prefix) :].strip()
            break
    return normalized


def tags_normalize(tags: dict[str, str]) -> dict[str, str]:
    """Normalised keys, trimmed values; empty values dropped. On a clash the first key wins."""
    normalized: dict[str, str] = {}
    for key, value in tags.items():
        if value is None:
            continue
        text = str(value).strip()
        if not text:
            continue
        normalized.setdefault(tag_key_normalize(key), text)
    return normalized
