"""Tabular exports for auditors (审计导出): CSV and Excel (.xlsx) bytes from typed columns and plain rows.

A table is a list of `Column`s (a row key, a header title, a kind) and an iterable of rows (mappings from
key to value). Each kind is rendered one way in both formats:

- "text": any value but bytes, dates and instants, as `str(value)`.
- "fen": integer fen (M-04), shown as yuan: `1234.56` in CSV, the number 1234.56 formatted `#,##0.00`
  in Excel. The yuan figure is exact (a Decimal, never a float, on our side).
- "date": a calendar date (already the Asia/Shanghai day), ISO `YYYY-MM-DD`, a real date in Excel.
- "datetime": an aware instant, shown as Asia/Shanghai wall time without a zone (Excel has no zones);
  the header says "(UTC+8)". Shanghai has kept UTC+8 without summer time since 1991.
- "int": a whole number.

`None` is an empty cell in every kind; a row without a column's key is an error (a misspelt key would
otherwise export a silently empty column). CSV is UTF-8 with a byte-order mark (so Excel detects UTF-8
and shows Chinese correctly) and CRLF line ends (RFC 4180). Text cells are guarded against formula
injection (OWASP "CSV Injection", ASVS 1.2.10): in CSV a text cell starting with = + - @ tab, CR or NUL
gets a leading single quote; in Excel every text cell is written as a string, never as a formula.
Pure logic: bytes out, no clock, and no I/O of our own. (openpyxl's write-only mode streams each sheet
through a temporary file it removes when the workbook is saved; and it stamps the .xlsx's "modified"
property and zip entries with the current time, so two exports of one table differ in those bytes.)
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

ColumnKind = Literal["text", "fen", "date", "datetime", "int"]
KINDS: Final[frozenset[str]] = frozenset(get_args(ColumnKind))

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
LOCAL_TIME_NOTE: Final = "(UTC+8)"

FEN_FORMAT: Final = "#,##0.00"
DATE_FORMAT: Final = "yyyy-mm-dd"
DATETIME_FORMAT: Final = "yyyy-mm-dd hh:mm:ss"
DATETIME_MS_FORMAT: Final = "yyyy-mm-dd hh:mm:ss.000"  # for instants with a fraction of a second
INT_FORMAT: Final = "0"  # not General, which turns long numbers into 1.23457E+11

# OWASP / ASVS 1.2.10: a spreadsheet may read a cell starting with one of these as a formula.
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r", "\0")
# XML 1.0 cannot carry these control characters, so no .xlsx can hold them (openpyxl refuses them).
_XML_ILLEGAL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_EXCEL_MAX_TEXT: Final = 32_767  # characters in one cell; openpyxl would silently cut the rest
_SHEET_NAME_FORBIDDEN: Final = re.compile(r"[\[\]:*?/\\]")
_SHEET_NAME_MAX: Final = 31
_WIDTH_SAMPLE_ROWS: Final = 100  # rows read ahead to size the columns; the rest are streamed
_MIN_WIDTH: Final = 8.0
_MAX_WIDTH: Final = 60.0
_WIDTH_PADDING: Final = 2.0
_KIND_WIDTH: Final[Mapping[str, float]] = {
    "text": 10,
    "fen": 14,  # 9,999,999.99
    "date": 10,  # 2026-09-30
    "datetime": 19,  # 2026-09-30 14:05:00
    "int": 6,
}


class TableError(ValueError):
    """A table that cannot be exported as given; the message names the sheet, row and column at fault."""


@dataclass(frozen=True)
class Column:
    """One column: the row key it reads, its header title, its kind, and optionally a fixed Excel width."""

    key: str
    title: str
    kind: ColumnKind = "text"
    width: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TableError(f"Column {self.key!r}: unknown kind {self.kind!r}; use one of {sorted(KINDS)}.")
        if self.width is not None and not 0 < self.width <= 255:  # Excel's own limit
            raise TableError(f"Column {self.key!r}: width {self.width} is not between 0 and 255.")

    @property
    def header(self) -> str:
        """The header text: the title, with "(UTC+8)" added to a datetime column that does not say so."""
        if self.kind == "datetime" and "UTC+8" not in self.title:
            return f"{self.title} {LOCAL_TIME_NOTE}"
        return self.title


@dataclass(frozen=True)
class Sheet:
    """One worksheet of an .xlsx: its name (Excel's rules: 1–31 characters, none of []:*?/\\), columns, rows.

    `rows` may be a generator; it is read once, as the sheet is written.
    """

    name: str
    columns: Sequence[Column]
    rows: Iterable[Mapping[str, object]]

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > _SHEET_NAME_MAX:
            raise TableError(f"Sheet name {self.name!r} must have 1 to {_SHEET_NAME_MAX} characters.")
        if _SHEET_NAME_FORBIDDEN.search(self.name) or self.name[0] == "'" or self.name[-1] == "'":
            raise TableError(
                f"Sheet name {self.name!r} may not contain []:*?/\\ nor start or end with an apostrophe."
            )
        if self.name.casefold() == "history":  # reserved by Excel
            raise TableError("Sheet name 'History' is reserved by Excel.")
        _check_columns(self.columns, where=f"Sheet {self.name!r}")


# ---------------------------------------------------------------- values


def _check_columns(columns: Sequence[Column], *, where: str) -> None:
    if not columns:
        raise TableError(f"{where}: a table needs at least one column.")


def _cell(row: Mapping[str, object], column: Column, index: int, where: str) -> object:
    """The row's value for `column`, checked against the column's kind; `index` is the 1-based data row."""
    try:
        value = row[column.key]
    except KeyError:
        raise TableError(
            f"{where}, data row {index}: no value for column {column.key!r} ({column.title})."
        ) from None
    if value is None:
        return None

    def refuse(expected: str) -> TableError:
        got = type(value).__name__
        return TableError(
            f"{where}, data row {index}, column {column.key!r} ({column.title}): expected {expected}, "
            f"got {got} {value!r}."
        )

    match column.kind:
        case "fen" | "int":
            # bool is an int in Python; True fen is never what anyone meant
            if type(value) is not int:
                raise refuse("integer fen" if column.kind == "fen" else "an integer")
        case "date":
            # a datetime is a date too, but which day is it? The caller decides (rules.calendar.local_date)
            if not isinstance(value, date) or isinstance(value, datetime):
                raise refuse("a date (convert instants with local_date, or use a datetime column)")
        case "datetime":
            if not isinstance(value, datetime) or value.utcoffset() is None:
                raise refuse("an aware datetime (naive ones have no known zone)")
        case _:
            if isinstance(value, bytes | bytearray | date):
                raise refuse("text (use a date or datetime column for dates, decode bytes first)")
    return value


def _yuan(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


def _local(instant: datetime) -> datetime:
    return instant.astimezone(SHANGHAI).replace(tzinfo=None)


def _text(value: object) -> str:
    return str(value)


def _guard(text: str) -> str:
    """OWASP CSV injection: a text cell that a spreadsheet would read as a formula gets a leading quote."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_value(value: object, kind: str) -> str:
    if value is None:
        return ""
    if kind == "fen":
        assert isinstance(value, int)
        return f"{_yuan(value):f}"
    if kind == "int":
        return str(value)
    if kind == "date":
        assert isinstance(value, date)
        return value.isoformat()
    if kind == "datetime":
        assert isinstance(value, datetime)
        return _local(value).isoformat(sep=" ")
    # Only text needs the guard: the other kinds are rendered here from typed values, and a leading "-"
    # there is a minus sign that a quote would turn into text.
    return _guard(_text(value))


# ---------------------------------------------------------------- CSV


def csv_bytes(columns: Sequence[Column], rows: Iterable[Mapping[str, object]]) -> bytes:
    """Return the table as CSV: UTF-8 with a byte-order mark, CRLF line ends, a header row of titles.

    Money is yuan with two decimals and no thousands separator (`-1234.50`), dates ISO, instants
    Asia/Shanghai wall time (`2026-09-30 14:05:00`, microseconds only when there are some). Text cells
    starting with = + - @ tab, CR or NUL get a leading single quote (formula injection); fields holding
    a comma, quote or line break are quoted (RFC 4180). No rows gives the header alone.
    """
    _check_columns(columns, where="CSV")
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_guard(column.header) for column in columns])
    for index, row in enumerate(rows, start=1):
        writer.writerow([_csv_value(_cell(row, column, index, "CSV"), column.kind) for column in columns])
    return buffer.getvalue().encode("utf-8-sig")


# ---------------------------------------------------------------- XLSX


def _display_width(text: str) -> float:
    """Columns an Excel cell needs for `text`: wide (CJK) characters take two, the longest line counts."""
    return max(
        sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line) for line in text.split("\n")
    )


def _shown(value: object, kind: str) -> str:
    """The text Excel will show for a value, for sizing its column."""
    if value is None:
        return ""
    if kind == "fen":
        assert isinstance(value, int)
        return f"{_yuan(value):,.2f}"
    if kind in ("date", "datetime"):
        return _csv_value(value, kind)[:23]
    return _text(value)


def _width(column: Column, sample: Sequence[Mapping[str, object]], where: str) -> float:
    if column.width is not None:
        return column.width
    widest = max(
        [_KIND_WIDTH[column.kind], _display_width(column.header)]
        + [
            _display_width(_shown(_cell(row, column, index, where), column.kind))
            for index, row in enumerate(sample, start=1)
        ]
    )
    return min(_MAX_WIDTH, max(_MIN_WIDTH, widest + _WIDTH_PADDING))


def _excel_text(text: str, where: str) -> str:
    # Control characters cannot be written in XML at all; U+FFFD shows the reader that one was there.
    clean = _XML_ILLEGAL.sub("\ufffd", text)
    if len(clean) > _EXCEL_MAX_TEXT:
        raise TableError(f"{where}: {len(clean)} characters; an Excel cell holds at most {_EXCEL_MAX_TEXT}.")
    return clean


def _text_cell(ws: object, text: str, where: str, font: Font | None = None) -> Cell:
    cell = WriteOnlyCell(ws, value=_excel_text(text, where))
    # openpyxl reads "=…" as a formula and "#N/A" as an error; audited text is always just text.
    cell.data_type = "s"
    if font is not None:
        cell.font = font
    return cell


def _excel_cell(ws: object, value: object, column: Column, where: str) -> Cell:
    if value is None:
        return WriteOnlyCell(ws, value=None)
    match column.kind:
        case "fen":
            assert isinstance(value, int)
            cell = WriteOnlyCell(ws, value=_yuan(value))
            cell.number_format = FEN_FORMAT
        case "int":
            cell = WriteOnlyCell(ws, value=value)
            cell.number_format = INT_FORMAT
        case "date":
            cell = WriteOnlyCell(ws, value=value)
            cell.number_format = DATE_FORMAT
        case "datetime":
            assert isinstance(value, datetime)
            local = _local(value)
            cell = WriteOnlyCell(ws, value=local)
            cell.number_format = DATETIME_MS_FORMAT if local.microsecond else DATETIME_FORMAT
        case _:
            cell = _text_cell(ws, _text(value), where)
    return cell


def _write_sheet(workbook: Workbook, sheet: Sheet) -> None:
    where = f"Sheet {sheet.name!r}"
    rows: Iterator[Mapping[str, object]] = iter(sheet.rows)
    # Widths must be set before the first row is streamed, so size them on the first rows only.
    sample = list(itertools.islice(rows, _WIDTH_SAMPLE_ROWS))
    ws = workbook.create_sheet(title=sheet.name)
    for number, column in enumerate(sheet.columns, start=1):
        ws.column_dimensions[get_column_letter(number)].width = _width(column, sample, where)
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    ws.append([_text_cell(ws, column.header, f"{where}, header", bold) for column in sheet.columns])
    for index, row in enumerate(itertools.chain(sample, rows), start=1):
        ws.append(
            [
                _excel_cell(
                    ws,
                    _cell(row, column, index, where),
                    column,
                    f"{where}, data row {index}, column {column.key!r}",
                )
                for column in sheet.columns
            ]
        )


def xlsx_bytes(sheets: Sequence[Sheet]) -> bytes:
    """Return an Excel workbook (.xlsx) with one worksheet per `Sheet`, in order, written by openpyxl in
    write-only (streaming) mode.

    Each sheet has a bold header row that stays in view (frozen panes), column widths sized to the title
    and the first 100 rows (or the column's own `width`, capped at 60), money as yuan numbers formatted
    `#,##0.00`, dates as real dates (`yyyy-mm-dd`), instants as Asia/Shanghai wall time
    (`yyyy-mm-dd hh:mm:ss`, with `.000` when there is a fraction of a second; Excel keeps milliseconds),
    integers formatted `0`, and text always as text, never as a formula. Control characters XML cannot
    carry become U+FFFD. No sheets, duplicate sheet names (Excel ignores case) or a text longer than an
    Excel cell holds are a TableError; so is a value of the wrong kind, naming the sheet, row and column.
    """
    if not sheets:
        raise TableError("A workbook needs at least one sheet.")
    seen: set[str] = set()
    for sheet in sheets:
        folded = sheet.name.casefold()
        if folded in seen:
            raise TableError(f"Two sheets are named {sheet.name!r} (Excel ignores case in sheet names).")
        seen.add(folded)
    workbook = Workbook(write_only=True)
    try:
        for sheet in sheets:
            _write_sheet(workbook, sheet)
    except BaseException:
        # A refused value leaves a half-written sheet streaming into openpyxl's temporary file; saving the
        # workbook is the public way to close every sheet and remove those files. The result is discarded.
        with contextlib.suppress(Exception):
            workbook.save(io.BytesIO())
        raise
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
