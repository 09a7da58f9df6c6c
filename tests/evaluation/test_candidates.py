"""`evaluation.committees.candidates` reads each expert's specialty codes exactly as stored, on both databases:
in one row per expert, and row by row for an expert whose code holds the separator of that row."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from evaluation import committees, draw
from evaluation.models import Expert, ExpertSpecialty
from storage.db import transaction
from tests.conftest import Database

ON = date(2026, 12, 20)


def _expert(n: int) -> Expert:
    return Expert(
        id=uuid.uuid4(),
        number=f"E{n:06d}",
        name=f"专家{n}",
        employer_credit_code="91320100MA00000000",
        employer_name="某某建设有限公司",
        region_code="320100",
        title="高级工程师",
        status="active",
        term_start=date(2025, 1, 1),
        term_end=date(2027, 12, 31),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


async def test_each_candidate_has_every_stored_code_sorted(database: Database) -> None:
    codes = {1: ["A0201", "B01", "A02"], 2: ["D01"], 3: ["C01"], 4: ["D0101", "A0299", "Z9"]}
    experts = {n: _expert(n) for n in codes}
    async with transaction(database.sessionmaker) as session:
        session.add_all(experts.values())
        await session.flush()
        session.add_all(
            ExpertSpecialty(expert_id=experts[n].id, code=code) for n, held in codes.items() for code in held
        )
    async with transaction(database.sessionmaker, read_only=True) as session:
        found = await committees.candidates(session, ["A02", "D01"], None, ON)

    assert {c.expert_id: c.specialties for c in found} == {
        str(experts[1].id): ("A02", "A0201", "B01"),
        str(experts[2].id): ("D01",),
        str(experts[4].id): ("A0299", "D0101", "Z9"),
    }


async def test_a_code_holding_a_line_feed_is_read_as_stored_and_the_draw_refuses_it(
    database: Database,
) -> None:
    # Written around the API's pattern: one code that holds the separator of the one-row-per-expert read.
    codes = {1: ["A02", "X1\nY2"], 2: ["A0201\n", "\nB"], 3: ["A02"]}
    experts = {n: _expert(n) for n in codes}
    async with transaction(database.sessionmaker) as session:
        session.add_all(experts.values())
        await session.flush()
        session.add_all(
            ExpertSpecialty(expert_id=experts[n].id, code=code) for n, held in codes.items() for code in held
        )
    async with transaction(database.sessionmaker, read_only=True) as session:
        found = await committees.candidates(session, ["A02"], None, ON)

    assert {c.expert_id: c.specialties for c in found} == {
        str(experts[1].id): ("A02", "X1\nY2"),
        str(experts[2].id): ("\nB", "A0201\n"),
        str(experts[3].id): ("A02",),
    }
    context = draw.Context(on=ON, bidders=frozenset(), parties=frozenset())
    with pytest.raises(draw.DrawError, match="reserves"):
        draw.prepare(found, context, (draw.Quota("A02", 1),), 1)
