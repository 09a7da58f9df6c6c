"""`ggzy calendar load|show` on the embedded database."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ggzy import cli as ggzy_cli
from storage.migrate import upgrade
from trading.cli import calendar_group


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GGZY_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("GGZY_DATABASE_URL", raising=False)
    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'ggzy.db'}")
    return tmp_path


def test_a_loaded_schedule_replaces_the_package_for_its_year(var_dir: Path) -> None:
    schedule = {"year": 2030, "holidays": ["2030-01-01", "2030-10-01"], "makeup_workdays": ["2030-09-29"]}
    path = var_dir / "2030.json"
    path.write_text(json.dumps(schedule))
    runner = CliRunner()
    loaded = runner.invoke(calendar_group, ["load", str(path)])
    assert loaded.exit_code == 0, loaded.output
    assert "loaded 2030: 2 holidays, 1 make-up working days" in loaded.output
    shown = runner.invoke(calendar_group, ["show", "2030"])
    assert shown.exit_code == 0, shown.output
    got = json.loads(shown.output)
    assert got["source"] == "loaded"
    assert got["holidays"] == ["2030-01-01", "2030-10-01"]
    assert got["makeup_workdays"] == ["2030-09-29"]


def test_a_schedule_with_a_date_outside_its_year_is_refused(var_dir: Path) -> None:
    path = var_dir / "bad.json"
    path.write_text(json.dumps({"year": 2030, "holidays": ["2031-01-01"]}))
    result = CliRunner().invoke(calendar_group, ["load", str(path)])
    assert result.exit_code == 1
    assert "2031-01-01" in result.output


def test_the_cli_lists_its_commands() -> None:
    result = CliRunner().invoke(ggzy_cli, ["--help"])
    for command in ("serve", "worker", "db", "demo", "bench", "calendar", "accounts"):
        assert command in result.output


def test_serve_on_another_port_presigns_urls_on_that_port(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    served: dict[str, Any] = {}
    monkeypatch.setenv("GGZY_VAR_DIR", str(var_dir))
    monkeypatch.setenv("GGZY_SECRET_KEY", "a secret key long enough for the grants")
    monkeypatch.delenv("GGZY_PUBLIC_URL", raising=False)
    monkeypatch.delenv("GGZY_S3_ENDPOINT", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    result = CliRunner().invoke(ggzy_cli, ["serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert served["port"] == 8123
    store = served["app"].state.runtime.store
    url = asyncio.run(store.presigned_get_url("notices/n1.pdf", timedelta(minutes=5)))
    assert url.startswith("http://127.0.0.1:8123/api/v1/objects/")
