"""Every package's tables, gathered so Alembic and the tests see the whole schema."""

from __future__ import annotations

import accounts.models
import archive.models
import bidding.models
import escrow.models
import evaluation.models
import rules.models
import storage.idempotency
import storage.outbox
import storage.rehearsal
import storage.uploads
import trading.models
from storage.db import Base

__all__ = ["metadata"]
_packages = (
    accounts.models,
    archive.models,
    bidding.models,
    escrow.models,
    evaluation.models,
    rules.models,
    storage.idempotency,
    storage.outbox,
    storage.uploads,
    storage.rehearsal,
    trading.models,
)
metadata = Base.metadata
