"""HTTP routes of the expert pool (专家库): the specialty tree, experts, their relationships, availability
and credit record."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.guards import authenticated
from evaluation.models import Specialty


class ExpertPoolController(Controller):
    path = "/api/v1/evaluation"
    tags = ["evaluation"]

    @get("/specialties", operation_id="list_specialties", guards=[authenticated])
    async def specialties(self, session: AsyncSession) -> list[dict[str, Any]]:
        """The specialty code tree, in code order."""
        rows = (await session.scalars(select(Specialty).order_by(Specialty.code))).all()
        return [
            {"code": s.code, "parent_code": s.parent_code, "name": s.name, "active": s.active} for s in rows
        ]
