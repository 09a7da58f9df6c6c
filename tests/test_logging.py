"""Grants are capabilities: their tokens and presigned signatures never reach a log line."""

from __future__ import annotations

import logging

from storage.redact import RedactGrants


def _record(msg: str, args: tuple[object, ...]) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, msg, args, None)


def test_an_access_log_line_keeps_its_shape_without_the_grant_token() -> None:
    record = _record(
        '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:1", "PUT", "/api/v1/objects/eyJlIjox.sig-_=", "1.1", 201)
    )
    assert RedactGrants().filter(record)
    assert record.getMessage() == '127.0.0.1:1 - "PUT /api/v1/objects/… HTTP/1.1" 201'
    assert isinstance(record.args, tuple) and record.args[4] == 201  # uvicorn's formatter reads them


def test_presigned_s3_signatures_and_upload_ids_are_redacted() -> None:
    record = _record(
        "HTTP Request: %s %s", ("PUT", "http://s3/b/k?uploadId=abc&X-Amz-Signature=f00&partNumber=2")
    )
    RedactGrants().filter(record)
    assert record.getMessage() == "HTTP Request: PUT http://s3/b/k?uploadId=…&X-Amz-Signature=…&partNumber=2"


def test_a_plain_message_is_redacted_too() -> None:
    record = _record("fetched /api/v1/objects/eyJabc.def for the opening", ())
    RedactGrants().filter(record)
    assert "eyJabc" not in record.getMessage()
