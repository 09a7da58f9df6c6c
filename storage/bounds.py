"""The bounds of the query, path and header values the API takes, stated in its schema and enforced
before a handler runs, so no value reaches the database outside what its column holds (a value past
them is a 400 naming the parameter).

Body fields state theirs in each package's msgspec schemas; these are the ones routes share.
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter

from storage.pagination import MAX_CURSOR_LENGTH, MAX_LIMIT

INT32_MAX = 2**31 - 1  # INTEGER on PostgreSQL: event sequence numbers
INT64_MAX = 2**63 - 1  # BIGINT: tree sizes and leaf indexes
MAX_FILTER_LENGTH = 200  # a filter or search term longer than any value it could match
MAX_HEADER_TOKEN = 200  # an If-Match or Idempotency-Key this server could honour

Limit = Annotated[int, Parameter(query="limit", ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Parameter(query="cursor", max_length=MAX_CURSOR_LENGTH)]
LastEventId = Annotated[int | None, Parameter(header="Last-Event-ID", required=False, gt=-1, le=INT32_MAX)]
StreamAfter = Annotated[int, Parameter(query="after", ge=0, le=INT32_MAX)]
Filter = Annotated[str | None, Parameter(max_length=MAX_FILTER_LENGTH)]
IfMatch = Annotated[str | None, Parameter(header="If-Match", required=False, max_length=MAX_HEADER_TOKEN)]
IdempotencyKey = Annotated[
    str | None, Parameter(header="Idempotency-Key", required=False, max_length=MAX_HEADER_TOKEN)
]
