"""The official schedules the centre loads: the only table of the rules package."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Mapped, mapped_column

from storage.db import Base


class CalendarYear(Base):
    """A year's official holiday schedule as the centre loaded it; it overrides the `holidays` package."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(primary_key=True)
    schedule: Mapped[dict[str, Any]]
    loaded_at: Mapped[datetime]
