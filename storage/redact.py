"""Keeping capabilities out of log lines."""

from __future__ import annotations

import logging
import re


class RedactGrants(logging.Filter):
    """Upload and download grants are capabilities: their tokens never reach a log line."""

    GRANT = re.compile(r"(/api/v1/objects/)[A-Za-z0-9_.=-]+")
    QUERY = re.compile(r"(X-Amz-Signature|X-Amz-Credential|uploadId)=[^&\s\"]+")

    def _redact(self, text: str) -> str:
        return self.QUERY.sub(r"\1=…", self.GRANT.sub(r"\1…", text))

    def filter(self, record: logging.LogRecord) -> bool:
        # Redact inside the arguments, not the formatted line: uvicorn's access formatter reads them.
        if isinstance(record.args, tuple):
            record.args = tuple(self._redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = self._redact(record.msg)
        return True
