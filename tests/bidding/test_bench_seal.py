"""`ggzy bench seal` and `ggzy bench opening` at tiny sizes: the JSON lines' shape, never their speed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from bidding import agekeys
from bidding.bench import (
    BIDDER_CODE,
    TENDER,
    Keys,
    bidder_file_key,
    ggzy_command,
    open_file,
    opening_command,
    prepared_context,
    seal_command,
    seal_with_the_command,
)
from bidding.envelopes import OPEN_THREADS
from storage.clock import SystemClock

KEYS = {"bench", "case", "mib_per_s", "seconds", "size_mib", "ratio_vs", "target"}
SPREAD = {"seconds_min", "seconds_max", "mib_per_s_min", "mib_per_s_max", "repeats"}
SEAL_CASES = [
    "ggzy_seal",
    "ggzy_seal_hashed",
    "ggzy_seal_fresh_process",
    "ggzy_open",
    "ggzy_encrypt_stage",
    "ggzy_decrypt",
    "python_aead_encrypt_into",
    "sha256_files",
    "age_encrypt",
    "age_encrypt_fsync",
    "age_decrypt",
    "openssl_raw_aead",
    "ggzy_seal_peak_rss",
]


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_seal_bench_prints_one_line_per_case() -> None:
    result = CliRunner().invoke(seal_command, ["--size-mib", "1", "--repeat", "3", "--openssl-seconds", "1"])
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stdout)
    assert [line["case"] for line in lines] == SEAL_CASES
    for line in lines[:-1]:
        assert KEYS <= set(line), line
        assert line["bench"] == "seal"
        assert line["size_mib"] == 1
    by_case = {line["case"]: line for line in lines}
    for case in (
        "ggzy_seal",
        "ggzy_seal_hashed",
        "ggzy_seal_fresh_process",
        "ggzy_open",
        "ggzy_encrypt_stage",
        "ggzy_decrypt",
        "python_aead_encrypt_into",
        "sha256_files",
    ):
        line = by_case[case]
        assert line["mib_per_s"] > 0 and line["seconds"] > 0
        assert SPREAD <= set(line) and line["repeats"] == 3
        assert line["seconds_min"] <= line["seconds"] <= line["seconds_max"]
    assert set(by_case["ggzy_seal"]["ratio_vs"]) == {"age_encrypt"}
    assert by_case["ggzy_seal"]["target"] == {"age_encrypt": 1.5}
    # the `ggzy bid seal` command as a new process, as the age CLI is one
    fresh = by_case["ggzy_seal_fresh_process"]
    assert set(fresh["ratio_vs"]) == {"age_encrypt", "age_encrypt_fsync"}
    assert fresh["target"] == {"age_encrypt": 1.0}
    assert "ggzy bid seal --prepared" in fresh["measures"]
    assert fresh["cpu_seconds_min"] <= fresh["cpu_seconds"] <= fresh["cpu_seconds_max"]
    assert fresh["cpu_seconds"] > 0 and set(fresh["cpu_ratio_vs"]) == {"age_encrypt"}
    assert set(by_case["sha256_files"]["ratio_vs"]) == {"age_encrypt"}
    assert "age does not" in by_case["sha256_files"]["measures"]
    assert set(by_case["ggzy_seal_hashed"]["ratio_vs"]) == {"age_encrypt"}
    assert by_case["ggzy_seal_hashed"]["target"] == {}
    assert set(by_case["ggzy_encrypt_stage"]["ratio_vs"]) == {
        "openssl_raw_aead",
        "python_aead_encrypt_into",
        "age_encrypt",
    }
    assert by_case["ggzy_encrypt_stage"]["target"] == {"openssl_raw_aead": 0.7}
    peak = by_case["ggzy_seal_peak_rss"]
    assert peak["peak_rss_mib"] >= peak["imports_rss_mib"] > 0
    assert peak["growth_mib"] >= 0
    assert "fresh interpreter" in peak["memory_measured_in"]
    assert "-elapsed" in by_case["openssl_raw_aead"]["source"]
    for case, tool in (("age_encrypt", "age"), ("age_encrypt_fsync", "age"), ("openssl_raw_aead", "openssl")):
        if shutil.which(tool) is None:
            assert by_case[case]["mib_per_s"] is None and by_case[case]["skipped"], case
        else:
            assert by_case[case]["mib_per_s"] > 0, case


def test_seal_bench_refuses_fewer_than_three_rounds() -> None:
    result = CliRunner().invoke(seal_command, ["--size-mib", "1", "--repeat", "1"])

    assert result.exit_code == 2
    assert "--repeat" in result.output


def test_opening_bench_sets_the_store_path_against_the_work_it_cannot_skip_on_as_many_threads() -> None:
    result = CliRunner().invoke(opening_command, ["--bids", "3", "--size-mib", "1", "--repeat", "3"])
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stdout)
    assert [line["case"] for line in lines] == [
        "open_stored_all",
        "open_files_all",
        "hash_decrypt_hash_in_memory",
        "python_aead_decrypt_into",
        "seal_all",
    ]
    for line in lines[:4]:
        assert KEYS | SPREAD <= set(line), line
        assert line["bench"] == "opening"
        assert line["mib_per_s"] > 0
        assert (line["bids"], line["bid_mib"], line["size_mib"], line["repeats"]) == (3, 1, 3.0, 3)
    assert {line["threads"] for line in lines[:4]} == {OPEN_THREADS}
    opening = lines[0]
    assert "object store" in opening["path"]
    assert set(opening["ratio_vs"]) == {"hash_decrypt_hash_in_memory", "python_aead_decrypt_into"}
    assert opening["target"] == {"hash_decrypt_hash_in_memory": 0.5}
    assert set(lines[2]["ratio_vs"]) == {"python_aead_decrypt_into"}


def test_the_fresh_process_case_is_the_bid_seal_command_a_bidder_runs(tmp_path: Path) -> None:
    keys = Keys()
    source, target = tmp_path / "bid.bin", tmp_path / "bid.age"
    source.write_bytes(b"our bid" * 1000)
    identity, prepared = tmp_path / "me.key", tmp_path / "prepared.json"
    identity.write_text(agekeys.identity_file_text(keys.bidder, SystemClock().now()))
    prepared.write_text(prepared_context(keys).to_json())

    seal_with_the_command(source, target, identity, prepared)

    assert ggzy_command()[-1].endswith("ggzy")
    opened = open_file(target, bidder_file_key(target, keys), tmp_path / "opened")
    assert (opened.manifest.tender, opened.manifest.bidder) == (TENDER, BIDDER_CODE)
    assert (tmp_path / "opened" / "bid.bin").read_bytes() == source.read_bytes()
