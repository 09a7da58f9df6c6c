"""Collusion signals computed at the opening (W-18, 招标投标法实施条例 40 视为串通投标).

The regulation deems bidders to collude when, among others, their bid documents were made by the same
unit or person, or are abnormally identical. At the opening the platform compares what it saw of every
opened bid and reports each shared trace as a `Signal` for the evaluation committee and the supervisors:

- identical_file: the same file (SHA-256 and size) in bids of different bidders;
- identical_metadata: the same document author, last editor, company, creating tool or producer, one
  metadata field at a time (a shared author is not compared with a shared editor);
- same_device, same_network_address, same_signing_key: bids submitted from the same client device or
  address, or signed with the same key.

A signal is a lead, not a finding: the committee decides (W-18). Bids of one bidder never signal against
each other (a bidder may hold several bids, one per lot). `extract_metadata` reads the traces from opened
files (PDF and Office Open XML) with bounded work and never raises, since the files are hostile input.
Pure logic apart from reading the one file given: no database, no web framework.
"""

from __future__ import annotations

import ipaddress
import re
import struct
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from collections import defaultdict, deque
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

RULE: Final = "W-18"
KINDS: Final = (
    "identical_file",
    "identical_metadata",
    "same_device",
    "same_network_address",
    "same_signing_key",
)
METADATA_KEYS: Final = ("author", "last_modified_by", "company", "creator_tool", "producer")

_FIELD_WORDS: Final = {
    "author": "author",
    "last_modified_by": "last editor",
    "company": "company",
    "creator_tool": "creating application",
    "producer": "PDF producer",
}


@dataclass(frozen=True)
class FileEvidence:
    """One file of an opened bid: its name, SHA-256 (hex), size in bytes and document metadata."""

    name: str
    sha256: str
    size: int
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class BidEvidence:
    """What the platform knows of one opened bid: its files, the key that signed its manifest, and the
    client's network address, device id and user agent at submission (None when unknown)."""

    bid_id: str
    bidder: str  # unified social credit code (统一社会信用代码)
    bidder_name: str
    files: tuple[FileEvidence, ...]
    signing_key: str
    address: str | None
    device: str | None
    user_agent: str | None


@dataclass(frozen=True)
class Signal:
    """One shared trace among bids of two or more bidders (sorted credit codes), with the bids involved,
    a sentence for the committee and the full shared value (`field=value` for identical_metadata)."""

    kind: str
    rule: str
    bidders: tuple[str, ...]
    bids: tuple[str, ...]
    evidence: str
    value: str


@dataclass(frozen=True)
class _Trace:
    bid: BidEvidence
    shown: str  # the value as this bid carries it
    where: str | None = None  # the file it was found in, for file-level traces
    digest: str | None = None  # that file's SHA-256


# ---------------------------------------------------------------- normalising the compared values


def _text_key(value: str) -> str:
    # NFKC folds full-width forms from Chinese input methods (ＡＢＣ公司 = ABC公司); case and runs of
    # spaces are not evidence of a different author.
    return " ".join(unicodedata.normalize("NFKC", value).split()).casefold()


def _sha256_key(value: str) -> str:
    return value.strip().lower()


def _address_key(value: str) -> str | None:
    text = value.strip()
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text.lower()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # Loopback or unspecified says where the platform's own proxy stood, not where the bidder was.
    if address.is_loopback or address.is_unspecified:
        return None
    return str(address)


def _token_key(value: str) -> str | None:
    text = value.strip()
    if not text:
        return None
    # Hex spellings of the same key or device id differ only in case; other encodings are case-sensitive.
    return text.lower() if re.fullmatch(r"[0-9A-Fa-f:]+", text) else text


# ---------------------------------------------------------------- collecting traces per kind

_Group = dict[tuple[str, ...], list[_Trace]]


def _file_traces(bids: Sequence[BidEvidence], ignore: set[str]) -> _Group:
    groups: _Group = defaultdict(list)
    for bid in bids:
        for item in bid.files:
            digest = _sha256_key(item.sha256)
            # Empty files are all alike; files every bidder must attach unchanged (the tender's own
            # forms) are alike by design.
            if item.size > 0 and digest and digest not in ignore:
                groups[(digest, str(item.size))].append(_Trace(bid, digest, item.name))
    return groups


def _metadata_traces(bids: Sequence[BidEvidence], ignore: set[str]) -> _Group:
    groups: _Group = defaultdict(list)
    for bid in bids:
        for item in bid.files:
            digest = _sha256_key(item.sha256)
            if digest in ignore:
                continue  # the issuing agency's own authorship, not the bidders'
            for field, value in item.metadata.items():
                key = _text_key(value)
                if key:
                    groups[(field, key)].append(_Trace(bid, " ".join(value.split()), item.name, digest))
    return groups


def _bid_value(bid: BidEvidence, kind: str) -> str | None:
    if kind == "same_device":
        return bid.device
    if kind == "same_network_address":
        return bid.address
    return bid.signing_key


def _bid_traces(bids: Sequence[BidEvidence], kind: str) -> _Group:
    groups: _Group = defaultdict(list)
    is_address = kind == "same_network_address"
    for bid in bids:
        raw = _bid_value(bid, kind)
        key = None if raw is None else _address_key(raw) if is_address else _token_key(raw)
        if raw is not None and key is not None:
            # An address is shown in its canonical spelling; a token as the bid carried it.
            groups[(key,)].append(_Trace(bid, key if is_address else raw.strip()))
    return groups


# ---------------------------------------------------------------- evidence sentences


def _shorten(value: str, width: int = 24) -> str:
    if len(value) <= width:
        return value
    head = width * 2 // 3
    return f"{value[:head]}…{value[-(width - head - 1) :]}"


def _names(traces: Sequence[_Trace]) -> dict[str, str]:
    names: dict[str, set[str]] = defaultdict(set)
    for trace in traces:
        names[trace.bid.bidder].add(trace.bid.bidder_name)
    return {code: min(found) for code, found in names.items()}


def _who(traces: Sequence[_Trace], with_files: bool) -> str:
    names = _names(traces)
    parts = []
    for code in sorted(names):
        label = f"{names[code]} ({code})"
        if with_files:
            files = sorted({t.where for t in traces if t.bid.bidder == code and t.where is not None})
            label += ": " + ", ".join(files)
        parts.append(label)
    return "; ".join(parts)


def _same_user_agent(traces: Sequence[_Trace]) -> str | None:
    agents = {(t.bid.user_agent or "").strip() for t in traces}
    return agents.pop() if len(agents) == 1 and "" not in agents else None


def _evidence(kind: str, key: tuple[str, ...], value: str, traces: Sequence[_Trace]) -> str:
    count = len({t.bid.bidder for t in traces})
    if kind == "identical_file":
        size = int(key[1])
        return (
            f"{count} bidders submitted the same file (SHA-256 {_shorten(value)}, {size:,} bytes): "
            f"{_who(traces, True)}."
        )
    if kind == "identical_metadata":
        field = _FIELD_WORDS.get(key[0], key[0].replace("_", " "))
        return (
            f'Documents of {count} bidders name the same {field} "{_shorten(value, 40)}": '
            f"{_who(traces, True)}."
        )
    if kind == "same_device":
        return (
            f"Bids of {count} bidders were submitted from the same device {_shorten(value)}: "
            f"{_who(traces, False)}."
        )
    if kind == "same_network_address":
        agent = _same_user_agent(traces)
        tail = f", with the same user agent {_shorten(agent, 60)}" if agent else ""
        return (
            f"Bids of {count} bidders were submitted from the same network address {value}{tail}: "
            f"{_who(traces, False)}."
        )
    return f"Bids of {count} bidders were signed with the same key {_shorten(value)}: {_who(traces, False)}."


# ---------------------------------------------------------------- signals


def _groups(bids: Sequence[BidEvidence], ignore: set[str]) -> Iterator[tuple[str, _Group]]:
    yield "identical_file", _file_traces(bids, ignore)
    yield "identical_metadata", _metadata_traces(bids, ignore)
    for kind in ("same_device", "same_network_address", "same_signing_key"):
        yield kind, _bid_traces(bids, kind)


def signals(bids: Sequence[BidEvidence], *, ignore_files: Collection[str] = ()) -> list[Signal]:
    """The W-18 signals among the opened bids of one tender, one per shared value, in a fixed order
    (by kind as in KINDS, then value, then bidders), whatever the order of `bids`.

    A value shared only by bids of one bidder is no signal, nor is the metadata of one file that several
    bidders share whole (identical_file reports the file). `ignore_files` lists SHA-256s of files every
    bidder is expected to include unchanged (forms issued with the tender documents): neither they nor
    their metadata signal."""
    ignore = {_sha256_key(digest) for digest in ignore_files}
    found: list[Signal] = []
    for kind, groups in _groups(bids, ignore):
        for key, traces in groups.items():
            bidders = tuple(sorted({t.bid.bidder for t in traces}))
            if len(bidders) < 2:
                continue
            if kind == "identical_metadata" and len({t.digest for t in traces}) == 1:
                continue  # one file shared whole: identical_file says it, its metadata adds nothing
            # Several spellings can fold to one key; show the smallest, so the order of bids never matters.
            shown = min(t.shown for t in traces)
            value = f"{key[0]}={shown}" if kind == "identical_metadata" else shown
            found.append(
                Signal(
                    kind=kind,
                    rule=RULE,
                    bidders=bidders,
                    bids=tuple(sorted({t.bid.bid_id for t in traces})),
                    evidence=_evidence(kind, key, shown, traces),
                    value=value,
                )
            )
    order = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(found, key=lambda s: (order[s.kind], s.value, s.bidders, s.bids))


def summary(found: Sequence[Signal]) -> dict[str, int]:
    """How many signals of each kind, every kind listed (zero included), in the order of KINDS."""
    counts = dict.fromkeys(KINDS, 0)
    for signal in found:
        counts[signal.kind] = counts.get(signal.kind, 0) + 1
    return counts


# ---------------------------------------------------------------- metadata extraction

PDF_WINDOW: Final = 4 * 1024 * 1024  # read at most the first and the last 4 MiB of a PDF
ZIP_MEMBER_MAX: Final = 1024 * 1024  # never inflate more than 1 MiB of one zip member
ZIP_DIRECTORY_MAX: Final = 4 * 1024 * 1024  # a central directory larger than this is not parsed
_VALUE_MAX: Final = 256
_STRING_MAX: Final = 64 * 1024
_XMP_MAX: Final = 1024 * 1024

_NS: Final = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "cp": "http://schemas.openxmlformats.org/package/2006/metadata/core-properties",
    "ep": "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties",
    "rel": "http://schemas.openxmlformats.org/package/2006/relationships",
}


def extract_metadata(path: Path) -> dict[str, str]:
    """The authoring traces of one opened file, keyed among METADATA_KEYS: for a PDF, the Info dictionary
    (/Author, /Creator as creator_tool, /Producer, /Company) completed by its XMP packet (dc:creator,
    xmp:CreatorTool, pdf:Producer); for a .docx, .xlsx or .pptx, docProps/core.xml (dc:creator,
    cp:lastModifiedBy) and docProps/app.xml (Application as creator_tool, Company).

    The format is recognised by content, not name. Work is bounded and linear in what is read (the first
    and last 4 MiB of a PDF; a zip's central directory up to 4 MiB and 1 MiB per member inflated), and
    nothing is raised: an unreadable or malformed file yields what could be read, often {}. Strings of an
    encrypted PDF's Info dictionary are ciphertext and are skipped; Info dictionaries inside compressed
    object streams are not read (the XMP packet, normally uncompressed, usually carries the same)."""
    try:
        with path.open("rb") as stream:
            start = stream.read(1024)
            if start.startswith(b"PK\x03\x04"):
                return _ooxml_metadata(stream)
            if b"%PDF-" in start:
                return _pdf_metadata(_read_ends(stream))
    # The files come from bidders and are hostile input; a reader must never stop the opening. Every
    # parser below returns what it has; this catches what a damaged file can still provoke.
    except Exception:
        return {}
    return {}


def _clean(value: str) -> str | None:
    text = " ".join("".join(" " if unicodedata.category(c) == "Cc" else c for c in value).split())
    return text[:_VALUE_MAX] or None


def _put(out: dict[str, str], key: str, value: str | None) -> None:
    cleaned = _clean(value) if value is not None else None
    if cleaned and key not in out:
        out[key] = cleaned


def _read_ends(stream: BinaryIO) -> bytes:
    size = stream.seek(0, 2)
    stream.seek(0)
    if size <= 2 * PDF_WINDOW:
        return stream.read()
    first = stream.read(PDF_WINDOW)
    stream.seek(size - PDF_WINDOW)
    # The gap is marked so no token can be read across it.
    return first + b"\n%gap\n" + stream.read(PDF_WINDOW)


# ---------------------------------------------------------------- PDF
#
# Hostile files can repeat a token a million times, so every scan below is linear in what was read: object
# bodies never overlap, only the last few candidates of a key are parsed, and each string is bounded.

_OBJECT_RE: Final = re.compile(rb"(?<![0-9])(\d{1,10})\s+(\d{1,5})\s+obj\b")
_INFO_REF_RE: Final = re.compile(rb"/Info\s*(\d{1,10})\s+(\d{1,5})\s+R\b")
_METADATA_REF_RE: Final = re.compile(rb"/Metadata\s*(\d{1,10})\s+(\d{1,5})\s+R\b")
_CATALOG_RE: Final = re.compile(rb"/Type\s*/Catalog\b")
_ENCRYPT_RE: Final = re.compile(rb"/Encrypt\s*(<<|\d)")
_METADATA_TYPE_RE: Final = re.compile(rb"/Type\s*/Metadata\b")
_INFO_KEYS: Final = tuple(
    (re.compile(rb"/" + name + rb"\s*(\(|<(?!<))"), key)
    for name, key in (
        (b"Author", "author"),
        (b"Creator", "creator_tool"),
        (b"Producer", "producer"),
        (b"Company", "company"),
    )
)
_MAX_OBJECTS: Final = 50_000
_TRIES: Final = 4
_ESCAPES: Final = {
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("("): b"(",
    ord(")"): b")",
    ord("\\"): b"\\",
}
# PDFDocEncoding (ISO 32000-1, Annex D) where it differs from Latin-1.
_PDFDOC: Final = {
    **dict(zip(range(0x18, 0x20), "˘ˇˆ˙˝˛˚˜", strict=True)),
    **dict(zip(range(0x80, 0x9F), "•†‡…—–ƒ⁄‹›−‰„“”‘’‚™ﬁﬂŁŒŠŸŽıłœšž", strict=True)),
    0xA0: "€",
}

_Span = tuple[int, int]


def _pdf_objects(data: bytes) -> dict[tuple[int, int], _Span]:
    """Where each object's body lies: from its header to its endobj or the next header, whichever comes
    first, so bodies never overlap. The last definition wins (incremental updates append new ones)."""
    headers = []
    for match in _OBJECT_RE.finditer(data):
        headers.append(match)
        if len(headers) == _MAX_OBJECTS:
            break
    found: dict[tuple[int, int], _Span] = {}
    for i, match in enumerate(headers):
        limit = headers[i + 1].start() if i + 1 < len(headers) else len(data)
        end = data.find(b"endobj", match.end(), limit)
        found[(int(match[1]), int(match[2]))] = (match.end(), limit if end == -1 else end)
    return found


def _pdf_metadata(data: bytes) -> dict[str, str]:
    objects = _pdf_objects(data)
    # The last trailer (or cross-reference stream) is the current one; its /Info names the document
    # information dictionary. Without one, search all that was read.
    refs = deque(_INFO_REF_RE.finditer(data), maxlen=1)
    info = objects.get((int(refs[0][1]), int(refs[0][2]))) if refs else None
    lo, hi = info or (0, len(data))
    out: dict[str, str] = {}
    # In an encrypted file the Info strings are ciphertext: noise that must not be compared.
    if not _ENCRYPT_RE.search(data):
        for pattern, key in _INFO_KEYS:
            _put(out, key, _pdf_value(data, pattern, lo, hi))
    for key, value in _xmp_values(_pdf_xmp(data, objects)).items():
        _put(out, key, value)
    return out


def _xmp_packet(data: bytes, lo: int, hi: int) -> bytes | None:
    start = data.find(b"<x:xmpmeta", lo, hi)
    if start == -1:
        return None
    end = data.find(b"</x:xmpmeta>", start, min(hi, start + _XMP_MAX))
    return data[start : end + len(b"</x:xmpmeta>")] if end != -1 else None


def _pdf_xmp(data: bytes, objects: Mapping[tuple[int, int], _Span]) -> bytes | None:
    # The document's packet is the catalog's /Metadata stream. Images carry packets of their own (naming
    # a photographer), so without a catalog only a /Type /Metadata object is taken.
    fallback = None
    for lo, hi in objects.values():
        if _CATALOG_RE.search(data, lo, hi):
            ref = _METADATA_REF_RE.search(data, lo, hi)
            span = objects.get((int(ref[1]), int(ref[2]))) if ref else None
            packet = _xmp_packet(data, *span) if span else None
            if packet:
                return packet
        elif fallback is None and _METADATA_TYPE_RE.search(data, lo, hi):
            fallback = _xmp_packet(data, lo, hi)
    return fallback


def _pdf_value(data: bytes, pattern: re.Pattern[bytes], lo: int, hi: int) -> str | None:
    """The last readable string value of a key between lo and hi (literal or hexadecimal), decoded."""
    for match in reversed(deque(pattern.finditer(data, lo, hi), maxlen=_TRIES)):
        at = match.start(1) + 1
        raw = _pdf_literal(data, at, hi) if match[1] == b"(" else _pdf_hex(data, at, hi)
        if raw is not None:
            return _pdf_text(raw)
    return None


def _pdf_literal(data: bytes, i: int, stop: int) -> bytes | None:
    """A literal string (ISO 32000-1, 7.3.4.2) from just after its "(": balanced parentheses, escapes,
    octal codes, line continuations. None if it does not end within the bound."""
    out = bytearray()
    depth = 1
    end = min(stop, i + _STRING_MAX)
    while i < end:
        c = data[i]
        i += 1
        if c == 0x5C:  # backslash
            if i >= end:
                return None
            e = data[i]
            i += 1
            if e in _ESCAPES:
                out += _ESCAPES[e]
            elif 0x30 <= e <= 0x37:
                digits = bytes([e])
                while len(digits) < 3 and i < end and 0x30 <= data[i] <= 0x37:
                    digits += data[i : i + 1]
                    i += 1
                out.append(int(digits, 8) & 0xFF)
            elif e == 0x0D:  # backslash-EOL continues the line
                if i < end and data[i] == 0x0A:
                    i += 1
            elif e != 0x0A:
                out.append(e)  # an unknown escape is the character itself
        elif c == 0x28:
            depth += 1
            out.append(c)
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return bytes(out)
            out.append(c)
        elif c == 0x0D:  # any end of line inside a string reads as LF
            out.append(0x0A)
            if i < end and data[i] == 0x0A:
                i += 1
        else:
            out.append(c)
    return None


def _pdf_hex(data: bytes, i: int, stop: int) -> bytes | None:
    end = data.find(b">", i, min(stop, i + _STRING_MAX))
    if end == -1:
        return None
    digits = re.sub(rb"\s+", b"", data[i:end])
    if not re.fullmatch(rb"[0-9A-Fa-f]*", digits):
        return None
    if len(digits) % 2:
        digits += b"0"  # an odd final digit is followed by an implicit 0
    return bytes.fromhex(digits.decode("ascii"))


def _pdf_text(raw: bytes) -> str:
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", errors="replace")
    if raw.startswith(b"\xef\xbb\xbf"):  # PDF 2.0
        return raw[3:].decode("utf-8", errors="replace")
    try:
        # Not PDFDocEncoding, but what many producers write; PDFDocEncoding text is rarely valid UTF-8.
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(_PDFDOC.get(b, chr(b)) for b in raw)


# ---------------------------------------------------------------- XML (XMP and Office Open XML)


def _parse_xml(data: bytes) -> ET.Element | None:
    """Parse small, entity-free XML; None for anything else.

    Without a DOCTYPE there are no entities to expand (no billion laughs, no external entities). The text
    is decoded first and handed to the parser as a str, so the bytes checked are the bytes parsed, whatever
    encoding a declaration claims."""
    if len(data) > ZIP_MEMBER_MAX:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if re.search(r"<!(DOCTYPE|ENTITY)", text, re.IGNORECASE):
        return None
    try:
        return ET.fromstring(text)  # noqa: S314 - DTD refused above; see the docstring
    except ET.ParseError:
        return None


def _xmp_values(packet: bytes | None) -> dict[str, str]:
    root = _parse_xml(packet) if packet else None
    if root is None:
        return {}
    out: dict[str, str] = {}
    attributes = (("xmp", "CreatorTool", "creator_tool"), ("pdf", "Producer", "producer"))
    for description in root.iter(f"{{{_NS['rdf']}}}Description"):
        for prefix, name, key in attributes:
            tag = f"{{{_NS[prefix]}}}{name}"
            # XMP writes simple properties as attributes or as elements.
            _put(out, key, description.get(tag))
            element = description.find(tag)
            if element is not None:
                _put(out, key, element.text)
        creator = description.find(f"{{{_NS['dc']}}}creator")
        if creator is not None:
            names = [
                li.text.strip() for li in creator.iter(f"{{{_NS['rdf']}}}li") if li.text and li.text.strip()
            ]
            _put(out, "author", "; ".join(names) if names else creator.text)
    return out


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes | None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > ZIP_MEMBER_MAX:
        return None
    with archive.open(info) as member:
        # The declared size can lie: read one byte past the cap, whatever the header says.
        data = member.read(ZIP_MEMBER_MAX + 1)
    return data if len(data) <= ZIP_MEMBER_MAX else None


def _ooxml_parts(archive: zipfile.ZipFile) -> tuple[str, str]:
    """The core and extended property parts, as the package relationships name them."""
    core, app = "docProps/core.xml", "docProps/app.xml"
    rels = _read_member(archive, "_rels/.rels")
    root = _parse_xml(rels) if rels else None
    if root is None:
        return core, app
    for rel in root.iter(f"{{{_NS['rel']}}}Relationship"):
        kind, target = rel.get("Type", ""), rel.get("Target", "").lstrip("/")
        if rel.get("TargetMode") == "External" or not target or ".." in target:
            continue
        if kind.endswith("/metadata/core-properties"):
            core = target
        elif kind.endswith("/extended-properties"):
            app = target
    return core, app


_END_RECORD: Final = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR: Final = struct.Struct("<4sLQL")
_ZIP64_END_RECORD: Final = struct.Struct("<4sQ2H2L4Q")


def _directory_size(stream: BinaryIO) -> int | None:
    """The size of a zip's central directory as its end record states it (zip64 too); None if absent.

    zipfile reads the whole directory and makes an object per entry, so it is measured before."""
    size = stream.seek(0, 2)
    start = max(0, size - _END_RECORD.size - 0xFFFF)  # the end record, then a comment of ≤ 64 KiB
    stream.seek(start)
    tail = stream.read()
    at = tail.rfind(b"PK\x05\x06")
    if at == -1 or at + _END_RECORD.size > len(tail):
        return None
    entries, directory = _END_RECORD.unpack_from(tail, at)[4:6]
    if entries != 0xFFFF and directory != 0xFFFFFFFF:
        return int(directory)
    # The real values are in the zip64 end record, which a locator just before names.
    if at < _ZIP64_LOCATOR.size:
        return None
    signature, _, record, _ = _ZIP64_LOCATOR.unpack_from(tail, at - _ZIP64_LOCATOR.size)
    if signature != b"PK\x06\x07":
        return None
    stream.seek(record)
    data = stream.read(_ZIP64_END_RECORD.size)
    if len(data) < _ZIP64_END_RECORD.size or not data.startswith(b"PK\x06\x06"):
        return None
    return int(_ZIP64_END_RECORD.unpack(data)[8])


def _ooxml_metadata(stream: BinaryIO) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        directory = _directory_size(stream)
        if directory is None or directory > ZIP_DIRECTORY_MAX:
            return out
        with zipfile.ZipFile(stream) as archive:
            core_name, app_name = _ooxml_parts(archive)
            core_data = _read_member(archive, core_name)
            core = _parse_xml(core_data) if core_data else None
            if core is not None:
                _put(out, "author", core.findtext(f"{{{_NS['dc']}}}creator"))
                _put(out, "last_modified_by", core.findtext(f"{{{_NS['cp']}}}lastModifiedBy"))
            app_data = _read_member(archive, app_name)
            app = _parse_xml(app_data) if app_data else None
            if app is not None:
                _put(out, "creator_tool", app.findtext(f"{{{_NS['ep']}}}Application"))
                _put(out, "company", app.findtext(f"{{{_NS['ep']}}}Company"))
    # A damaged archive fails in many ways (zlib, CRC, truncation); keep what was read before it did.
    except Exception:
        return out
    return out
