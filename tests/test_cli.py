"""The `ggzy` command as a user meets it: complete help, a version, one clear line for every mistake, and a
command that loads only what it uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

import ggzy
from bidding import agekeys, envelope
from bidding.bench import BIDDER_CODE, TENDER, Keys, prepared_context, seal_file
from ggzy import cli
from storage.clock import SystemClock
from storage.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there


def _walk(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _walk(command, (*path, name))


def test_every_command_and_every_option_has_help() -> None:
    missing = []
    for path, command in _walk(cli):
        if not (command.help or command.short_help):
            missing.append(" ".join(path))
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                missing.append(f"{' '.join(path)} {param.opts[0]}")
    assert missing == []


def test_the_listing_says_what_each_command_says_of_itself() -> None:
    tables = {(): ggzy.COMMANDS, ("verify",): ggzy.VERIFY, ("bench",): ggzy.BENCH}
    for path, command in _walk(cli):
        table = tables.get(path[:-1])
        if table is not None and path[-1] in table:
            assert table[path[-1]][1] == command.get_short_help_str(limit=10_000), path


def test_help_names_the_environment_and_no_work_items() -> None:
    for path, command in _walk(cli):
        text = CliRunner().invoke(cli, [*path, "--help"]).output
        assert "Issue " not in text and "issue " not in text, path
        client = any(param.name == "url" for param in command.params)
        for param in command.params:
            if isinstance(param, click.Option) and param.name == "url":
                assert "GGZY_URL" in (param.help or ""), path
            if isinstance(param, click.Option) and param.name == "username" and client:
                assert "GGZY_PASSWORD" in (param.help or "") and "GGZY_TOKEN" in (param.help or ""), path


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("ggzy ")


def test_help_imports_no_package_and_seal_imports_no_server() -> None:
    probe = (
        "import sys, ggzy\n"
        "ggzy.cli.main(sys.argv[1:], standalone_mode=False)\n"
        "print('MODULES', ' '.join(sorted(m for m in sys.modules if '.' not in m)))\n"
    )

    def loaded(*args: str) -> set[str]:
        out = subprocess.run(
            [sys.executable, "-c", probe, *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        return set(out.split("MODULES", 1)[1].split())

    bare = loaded("--help")
    assert not bare & {"app", "litestar", "sqlalchemy", "httpx", "cryptography", "trading", "bidding"}
    sealing = loaded("bid", "seal", "--help")
    assert "bidding" in sealing
    assert not sealing & {"app", "litestar", "sqlalchemy", "alembic", "trading", "escrow", "uvicorn"}


def test_sealing_offline_imports_no_http_client_no_event_loop_and_no_server(tmp_path: Path) -> None:
    key, prepared, document = _offline(tmp_path)
    probe = (
        "import sys, ggzy\n"
        "ggzy.cli.main(sys.argv[1:], standalone_mode=False)\n"
        "print('MODULES', ' '.join(sorted(m for m in sys.modules if '.' not in m)))\n"
    )
    args = ["bid", "seal", "--prepared", str(prepared), "--key", str(key), "--kind", "technical"]
    args += ["--out", str(tmp_path / "bid.age"), str(document)]
    out = subprocess.run(
        [sys.executable, "-c", probe, *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout

    assert (tmp_path / "bid.age").stat().st_size > 0
    loaded = set(out.split("MODULES", 1)[1].split())
    assert "bidding" in loaded
    assert not loaded & {"httpx", "asyncio", "rich", "pygments", "sqlalchemy", "litestar", "app", "trading"}


# ---------------------------------------------------------------- user errors: one line, non-zero, no traceback


def _one_line_error(result: Result) -> str:
    """The one line of a refusal (a usage error's standard `Usage:` and `Try …` hints aside)."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    hints = ("Usage: ", "Try '")
    lines = [
        line
        for line in result.output.splitlines()
        if line.strip() and not line.startswith(hints) and not line.rstrip().endswith(":")  # prompts
    ]
    assert len(lines) == 1, result.output
    return lines[0]


def _invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    environment = {"GGZY_TOKEN": "t", "GGZY_URL": UNREACHABLE, **(env or {})}
    return CliRunner().invoke(cli, list(args), env=environment, input=input)


@pytest.fixture
def sealed(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An envelope sealed to a key written as an identity file, and another identity file."""
    keys = Keys()
    document = tmp_path / "bid.pdf"
    document.write_bytes(b"%PDF our bid")
    envelope = tmp_path / "bid.age"
    seal_file(document, envelope, keys)
    mine, other = tmp_path / "me.key", tmp_path / "other.key"
    mine.write_text(agekeys.identity_file_text(keys.bidder, _now()))
    other.write_text(agekeys.identity_file_text(agekeys.generate(signing=True), _now()))
    return envelope, mine, other


def _now() -> datetime:
    return SystemClock().now()


def test_seal_without_a_price_names_the_option(tmp_path: Path) -> None:
    key = tmp_path / "me.key"
    key.write_text(agekeys.identity_file_text(agekeys.generate(signing=True), _now()))
    (tmp_path / "bid.pdf").write_bytes(b"%PDF")
    line = _one_line_error(
        _invoke(
            "bid",
            "seal",
            "--tender",
            "T",
            "--key",
            str(key),
            "--out",
            str(tmp_path / "b.age"),
            str(tmp_path / "bid.pdf"),
        )
    )
    assert "--price-fen" in line
    assert not (tmp_path / "b.age").exists()


def test_a_technical_envelope_with_a_price_is_refused_before_sealing(tmp_path: Path) -> None:
    key = tmp_path / "me.key"
    key.write_text(agekeys.identity_file_text(agekeys.generate(signing=True), _now()))
    (tmp_path / "bid.pdf").write_bytes(b"%PDF")
    args = ["--key", str(key), "--out", str(tmp_path / "b.age"), str(tmp_path / "bid.pdf")]
    line = _one_line_error(
        _invoke("bid", "seal", "--tender", "T", "--kind", "technical", "--price-fen", "1", *args)
    )
    assert "--price-fen" in line


def _offline(tmp_path: Path, keys: Keys | None = None) -> tuple[Path, Path, Path]:
    """An identity file, a sealing context naming its keys as registered, and a bid file."""
    keys = keys or Keys()
    key = tmp_path / "me.key"
    key.write_text(agekeys.identity_file_text(keys.bidder, _now()))
    prepared = tmp_path / "prepared.json"
    prepared.write_text(prepared_context(keys).to_json())
    document = tmp_path / "投标文件.pdf"
    document.write_bytes(b"%PDF-1.7 our bid")
    return key, prepared, document


def test_seal_from_a_prepared_context_needs_no_server_and_opens_with_ones_key(tmp_path: Path) -> None:
    keys = Keys()
    key, prepared, document = _offline(tmp_path, keys)
    out = tmp_path / "bid.age"

    result = _invoke(
        "bid", "seal", "--prepared", str(prepared), "--key", str(key), "--price-fen", "4780",
        "--out", str(out), str(document),
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    opened = _invoke("bid", "open", "--key", str(key), "--out", str(tmp_path / "o"), str(out))
    assert opened.exit_code == 0, opened.output
    assert (tmp_path / "o" / document.name).read_bytes() == document.read_bytes()
    manifest = json.loads(opened.stdout.split("\n1 file(s)")[0])
    assert (manifest["tender"], manifest["bidder"], manifest["declared_price_fen"]) == (
        TENDER,
        BIDDER_CODE,
        4780,
    )
    with out.open("rb") as src:
        header = envelope.read_header(src)
    envelope.check_roster(header, custodians=keys.custodian_publics, threshold=2, context=TENDER)


def test_seal_from_a_prepared_context_refuses_a_key_that_was_not_registered(tmp_path: Path) -> None:
    _key, prepared, document = _offline(tmp_path)
    stranger = tmp_path / "stranger.key"
    stranger.write_text(agekeys.identity_file_text(agekeys.generate(signing=True), _now()))
    out = tmp_path / "bid.age"

    line = _one_line_error(
        _invoke(
            "bid", "seal", "--prepared", str(prepared), "--key", str(stranger), "--kind", "technical",
            "--out", str(out), str(document),
        )
    )  # fmt: skip

    assert "not an encryption key registered to your organisation" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["me.key", "prepared.json", "stranger.key", document.name]
    )  # no envelope, and nothing left beside it


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda text: "{not json", "prepared.json"),
        (lambda text: text.replace('"version": 1', '"version": 9'), "sealing context"),
        (lambda text: text.replace('"shamir_threshold": 2', '"shamir_threshold": "2"'), "shamir_threshold"),
        (lambda text: text.replace('"lots": [\n    1\n  ]', '"lots": [2]'), "the tender has lots [2]"),
    ],
)
def test_a_bad_sealing_context_is_one_line_naming_it(
    tmp_path: Path, change: Callable[[str], str], says: str
) -> None:
    key, prepared, document = _offline(tmp_path)
    prepared.write_text(change(prepared.read_text()))

    line = _one_line_error(
        _invoke(
            "bid", "seal", "--prepared", str(prepared), "--key", str(key), "--kind", "technical",
            "--out", str(tmp_path / "bid.age"), str(document),
        )
    )  # fmt: skip

    assert says in line
    assert not (tmp_path / "bid.age").exists()


def test_seal_names_the_tender_or_the_prepared_context(tmp_path: Path) -> None:
    key, prepared, document = _offline(tmp_path)
    args = ["--key", str(key), "--kind", "technical", "--out", str(tmp_path / "b.age"), str(document)]

    assert "--tender" in _one_line_error(_invoke("bid", "seal", *args))
    line = _one_line_error(_invoke("bid", "seal", "--prepared", str(prepared), "--tender", "T-9", *args))
    assert "prepared for tender bench, not T-9" in line


def test_open_with_the_wrong_key_says_so(sealed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    envelope, _mine, other = sealed
    line = _one_line_error(
        _invoke("bid", "open", "--key", str(other), "--out", str(tmp_path / "o"), str(envelope))
    )
    assert "not sealed to" in line and str(other) in line


def test_open_of_a_file_that_is_not_an_envelope_says_so(
    sealed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _envelope, mine, _other = sealed
    plain = tmp_path / "plain.pdf"
    plain.write_bytes(b"%PDF not sealed")
    line = _one_line_error(
        _invoke("bid", "open", "--key", str(mine), "--out", str(tmp_path / "o"), str(plain))
    )
    assert "not an age file" in line


def test_open_into_a_folder_holding_the_files_overwrites_nothing(
    sealed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    envelope, mine, _other = sealed
    out = tmp_path / "opened"
    first = _invoke("bid", "open", "--key", str(mine), "--out", str(out), str(envelope))
    assert first.exit_code == 0, first.output
    (out / "bid.pdf").write_bytes(b"edited since")
    line = _one_line_error(_invoke("bid", "open", "--key", str(mine), "--out", str(out), str(envelope)))
    assert "already holds" in line and "bid.pdf" in line
    assert (out / "bid.pdf").read_bytes() == b"edited since"


@pytest.mark.parametrize(
    "args",
    [
        ("bid", "list", "--tender", "T"),
        ("bid", "obtain", "--tender", "T"),
        ("draw", "reveal", "{witness}"),
        ("verify", "receipt", "{receipt}", "--fetch-key"),
        ("accounts", "password", "--username", "agency"),
    ],
)
def test_an_unreachable_server_is_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    from evaluation import witness

    files = {"witness": tmp_path / "w.json", "receipt": tmp_path / "r.json"}
    files["witness"].write_text(witness.Witness.fresh("d").to_json())
    files["receipt"].write_text("{}")
    argv = [arg.format(**files) for arg in args]
    # accounts password asks for the new password (twice) before it talks to the server
    line = _one_line_error(_invoke(*argv, env={"GGZY_PASSWORD": "p"}, input="n3w-pass-word\nn3w-pass-word\n"))
    assert UNREACHABLE in line


def test_the_entry_point_prints_no_traceback_when_the_server_is_down() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ggzy", "bid", "list", "--tender", "T", "--url", UNREACHABLE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "GGZY_TOKEN": "t"},
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "cannot reach the ggzy server" in done.stderr


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GGZY_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("GGZY_DATABASE_URL", raising=False)
    monkeypatch.delenv("GGZY_S3_ENDPOINT", raising=False)
    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'ggzy.db'}")
    return tmp_path


@pytest.mark.parametrize(
    ("fmt", "content"), [("camt053", b"<Document><oops"), ("csv", b"\x00\xff not a statement")]
)
def test_a_malformed_statement_is_one_line_and_imports_nothing(
    var_dir: Path, fmt: str, content: bytes
) -> None:
    path = var_dir / "statement"
    path.write_bytes(content)
    line = _one_line_error(CliRunner().invoke(cli, ["escrow", "import", "--format", fmt, str(path)]))
    assert "statement" in line or fmt in line
    listed = CliRunner().invoke(cli, ["escrow", "conflicts", "--status", "all"])
    assert listed.exit_code == 0 and listed.output == ""


def test_an_unmigrated_database_says_to_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GGZY_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("GGZY_DATABASE_URL", raising=False)
    line = _one_line_error(CliRunner().invoke(cli, ["escrow", "conflicts"]))
    assert "ggzy db upgrade" in line


def test_db_upgrade_prints_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GGZY_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("GGZY_DATABASE_URL", raising=False)
    done = subprocess.run(
        [sys.executable, "-m", "ggzy", "db", "upgrade"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=os.environ,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout.count("\n") == 1 and "is at head" in done.stdout
