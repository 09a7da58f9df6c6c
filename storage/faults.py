"""Crash points (failpoints): named places where a process can be made to die on purpose, so the tests
can prove that a crash anywhere in a money movement leaves no half-written state and no double payment.

`GGZY_CRASH_AT` names the points (comma-separated) at which the process exits at once with status 137, as
if killed: no `finally`, no commit, no flush. Unset, a crash point costs one set lookup.
"""

from __future__ import annotations

import os
from typing import Final

EXIT_STATUS: Final = 137  # what a shell reports for a process killed by SIGKILL


def _armed() -> frozenset[str]:
    return frozenset(p.strip() for p in os.environ.get("GGZY_CRASH_AT", "").split(",") if p.strip())


_ARMED: Final = _armed()


def crash_point(name: str) -> None:
    """Die here, at once, if `GGZY_CRASH_AT` names this point."""
    if name in _ARMED:
        os._exit(EXIT_STATUS)
