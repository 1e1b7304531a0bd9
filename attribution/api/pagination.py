"""Pagination every list endpoint uses: limit/offset, bounded so no value reaches Postgres out of
range (a limit or offset past bigint was a 500, issue 15 defect 6)."""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

MAX_LIMIT = 1000
# Postgres' OFFSET is a bigint; far below that, an offset past every row just answers [].
MAX_OFFSET = 2**62


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """`limit` is capped at MAX_LIMIT rows; an `offset` that is not a number in range is a 400."""

    max_limit = MAX_LIMIT

    def get_offset(self, request: Request) -> int:
        raw = request.query_params.get(self.offset_query_param)
        if raw is None or raw == "":
            return 0
        try:
            offset = int(raw)
        except ValueError:
            raise ValidationError({self.offset_query_param: [f"{raw[:40]!r} is not a whole number."]})
        if not 0 <= offset <= MAX_OFFSET:
            raise ValidationError({self.offset_query_param: [f"Must be between 0 and {MAX_OFFSET}."]})
        return offset
