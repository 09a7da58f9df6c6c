"""`ggzy bench seal` and `ggzy bench opening` at tiny sizes: the JSON lines' shape, never their speed."""

from __future__ import annotations

import json
import shutil
from typing import Any

from click.testing import CliRunner

from bidding.bench import opening_command, seal_command

KEYS = {"bench", "case", "mib_per_s", "seconds", "size_mib", "ratio_vs", "target"}
SEAL_CASES = [
    "ggzy_seal",
    "ggzy_seal_hashed",
    "ggzy_open",
    "ggzy_encrypt_stage",
    "ggzy_decrypt",
    "python_aead_encrypt_into",
    "age_encrypt",
    "age_decrypt",
    "openssl_raw_aead",
    "ggzy_seal_peak_rss",
]


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_seal_bench_prints_one_line_per_case() -> None:
    result = CliRunner().invoke(seal_command, ["--size-mib", "1", "--repeat", "1", "--openssl-seconds", "1"])
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stdout)
    assert [line["case"] for line in lines] == SEAL_CASES
    for line in lines:
        assert KEYS <= set(line), line
        assert line["bench"] == "seal"
        assert line["size_mib"] == 1
    by_case = {line["case"]: line for line in lines}
    for case in (
        "ggzy_seal",
        "ggzy_seal_hashed",
        "ggzy_open",
        "ggzy_encrypt_stage",
        "ggzy_decrypt",
        "python_aead_encrypt_into",
    ):
        assert by_case[case]["mib_per_s"] > 0 and by_case[case]["seconds"] > 0
    assert set(by_case["ggzy_seal"]["ratio_vs"]) == {"age_encrypt"}
    assert by_case["ggzy_seal"]["target"] == {"age_encrypt": 1.5}
    assert set(by_case["ggzy_seal_hashed"]["ratio_vs"]) == {"age_encrypt"}
    assert by_case["ggzy_seal_hashed"]["target"] == {}
    assert set(by_case["ggzy_encrypt_stage"]["ratio_vs"]) == {
        "openssl_raw_aead",
        "python_aead_encrypt_into",
        "age_encrypt",
    }
    assert by_case["ggzy_encrypt_stage"]["target"] == {"openssl_raw_aead": 0.7}
    assert by_case["ggzy_seal_peak_rss"]["max_rss_mib"] > 0
    for case, tool in (("age_encrypt", "age"), ("openssl_raw_aead", "openssl")):
        if shutil.which(tool) is None:
            assert by_case[case]["mib_per_s"] is None and by_case[case]["skipped"], case
        else:
            assert by_case[case]["mib_per_s"] > 0, case


def test_opening_bench_reports_opening_next_to_the_raw_aead() -> None:
    result = CliRunner().invoke(opening_command, ["--bids", "3", "--size-mib", "1", "--workers", "2"])
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stdout)
    assert [line["case"] for line in lines] == ["seal_all", "open_all", "python_aead_decrypt_into"]
    for line in lines:
        assert KEYS <= set(line), line
        assert line["bench"] == "opening"
        assert line["mib_per_s"] > 0
    opening = lines[1]
    assert (opening["bids"], opening["workers"], opening["bid_mib"], opening["size_mib"]) == (3, 2, 1, 3.0)
    assert set(opening["ratio_vs"]) == {"python_aead_decrypt_into"}
    assert opening["open_p50_s"] <= opening["open_max_s"]
