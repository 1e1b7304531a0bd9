"""Tag key normalisation shared by every provider: `user:Team `, `resourceTags/user:team` and
`resource_tags_user_team` all become `team`, so one attribution rule covers all clouds."""

from __future__ import annotations

from functools import lru_cache

from attribution.ingest.errors import RowError

# No provider allows tags this long (AWS: 128/256 characters, GCP labels: 63, Azure: 512/256), so
# a longer cell is corrupt: the row is rejected with its line instead of storing it as is.
TAG_KEY_LIMIT = 512
TAG_VALUE_LIMIT = 64 * 1024

_PREFIXES = ("resourcetags/user:", "resource_tags_user_", "user:")


@lru_cache(maxsize=4096)
def tag_key_normalize(key: str) -> str:
    normalized = key.strip().lower()
    for prefix in _PREFIXES:
        if normalized.startswith(prefix):
            normalized = normalized[len(prefix) :].strip()
            break
    return normalized


def tags_check(tags: dict[str, str]) -> dict[str, str]:
    """The tags, or RowError when a key or a value is over the limits above. Every format calls it
    (through tags_normalize at the latest)."""
    for key, value in tags.items():
        if len(key) > TAG_KEY_LIMIT:
            raise RowError(f"Tags: a key of {len(key):,} characters (limit {TAG_KEY_LIMIT})")
        if value is not None and len(str(value)) > TAG_VALUE_LIMIT:
            raise RowError(
                f"Tags: the value of {key[:80]!r} has {len(str(value)):,} characters "
                f"(limit {TAG_VALUE_LIMIT:,})"
            )
    return tags


def tags_normalize(tags: dict[str, str]) -> dict[str, str]:
    """Normalised keys, trimmed values; empty values dropped. On a clash the first key wins.
    Raises RowError for a tag over the limits (tags_check)."""
    tags_check(tags)
    normalized: dict[str, str] = {}
    for key, value in tags.items():
        if value is None:
            continue
        text = str(value).strip()
        if not text:
            continue
        normalized.setdefault(tag_key_normalize(key), text)
    return normalized
