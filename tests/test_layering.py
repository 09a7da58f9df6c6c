"""The packages import one way (DESIGN.md "Layout"): each imports only from the packages below it, and
nothing imports the composition root. Read from the code's own import statements, function-level ones
included, so a new arrow that runs back up fails here before it becomes a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import app  # noqa: F401  (the composition root registers every job and stage and plugs the engine)
from storage import jobs
from trading import engine

ROOT = Path(__file__).resolve().parent.parent
# bottom → top; packages on one floor may not import each other either way unless listed as allowed
FLOORS: list[set[str]] = [
    {"storage"},
    {"rules"},
    {"accounts"},
    {"escrow"},
    {"trading"},
    {"bidding"},
    {"evaluation"},
    {"archive"},
    {"demo"},
    {"app", "ggzy"},
]
RANK = {name: i for i, floor in enumerate(FLOORS) for name in floor}
# The arrows DESIGN.md names as still running up: the schema gathered for Alembic and the command line.
ALLOWED_UP = {"storage/models.py"}


def _sources() -> list[Path]:
    files = [ROOT / "app.py", ROOT / "ggzy.py"]
    for package in RANK:
        folder = ROOT / package
        if folder.is_dir():
            files += [p for p in folder.rglob("*.py") if "migrations" not in p.parts]
    return files


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def test_every_import_runs_down_the_floors() -> None:
    upward = []
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        here = rel.split("/")[0].removesuffix(".py")
        for line, module in _imports(path):
            there = module.split(".")[0]
            if there not in RANK or there == here or rel in ALLOWED_UP:
                continue
            if RANK[there] >= RANK[here]:
                upward.append(f"{rel}:{line} imports {module}")
    assert upward == []


def test_nothing_imports_the_composition_root() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _sources()
        if path.name not in ("app.py", "ggzy.py") or path.parent != ROOT
        for line, module in _imports(path)
        if module in ("app", "ggzy")
    ]
    assert offenders == []


def test_a_step_asked_of_an_unplugged_bid_stage_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine.bids() is not None  # the composition root plugged bidding in
    monkeypatch.setattr(engine, "_bids", [])
    with pytest.raises(engine.EngineNotPlugged, match=r"bidding\.stage"):
        engine.bids()


def test_the_tick_runs_every_package_stage_in_its_place_and_a_name_registers_once() -> None:
    assert [name for name, _ in jobs.tick_stages()] == [
        "deposit refunds",
        "ledger head",
        "evaluation",
        "archive",
        "audit head",
        "storage sweep",
    ]
    with pytest.raises(ValueError, match="already registered"):
        jobs.tick_stage("evaluation", order=99)(jobs.tick_stages()[0][1])
