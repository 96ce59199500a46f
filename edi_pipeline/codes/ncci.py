"""CMS NCCI edits (PTP pairs, MUEs, add-on codes): the official quarterly files read in their own layouts,
the shipped table, and lookups by code and date over it and the imported versions (store.ncci_tables
keeps those in a SQLite file beside the store and reads them through the `Table` interface).

An imported table of a kind replaces the shipped one (and older imports) for dates of service on or after
its effective date. A PTP or AOC row applies from its effective date through its deletion date (CMS
gives the last day the edit applies); rows without dates apply always.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterable, Iterator

from edi_pipeline.core.errors import EdiError

KINDS = ("ptp", "mue", "aoc")
CONTRACTOR = "CCCCC"  # AOC: the Medicare contractor defines the primary codes
_CODE = re.compile(r"[0-9A-Z]{4}[0-9A-Z]")
_MAX_MEMBER = 1 << 30  # bytes of one zip member read into memory


class NcciError(EdiError):
    """An NCCI file is unreadable, of an unknown layout, or has a malformed row."""


@dataclass(frozen=True, slots=True)
class PtpEdit:
    column1: str
    column2: str
    effective: date | None
    deleted: date | None
    modifier: int  # 0 not allowed, 1 allowed with a PTP-associated modifier, 9 not applicable
    rationale: str
    version: str

    def active(self, d: date | None) -> bool:
        return d is None or ((self.effective is None or self.effective <= d)
                             and (self.deleted is None or d <= self.deleted))

    def cite(self) -> str:
        dates = f", deleted {self.deleted}" if self.deleted else ""
        return f"NCCI PTP {self.version} {self.column1}/{self.column2} modifier indicator {self.modifier}{dates}"


@dataclass(frozen=True, slots=True)
class MueEdit:
    code: str
    mue: int
    mai: int  # 1 line edit, 2 date of service (policy), 3 date of service (clinical)
    rationale: str
    version: str


@dataclass(frozen=True, slots=True)
class AocEdit:
    primary: str  # CONTRACTOR when the contractor defines the primaries
    addon: str
    type: int  # 1 primaries defined by CPT/HCPCS, 2 none defined, 3 some defined
    effective: date | None
    deleted: date | None
    version: str

    def active(self, d: date | None) -> bool:
        return d is None or ((self.effective is None or self.effective <= d)
                             and (self.deleted is None or d <= self.deleted))


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """One CMS file read: its kind, version, effective quarter and rows (tuples in the store's column order)."""

    name: str
    kind: str
    version: str
    part: str
    effective: date
    rows: list[tuple]
    sha256: str


# ---------------------------------------------------------------- dates and names

def _date(value: str, where: str) -> date | None:
    v = value.strip()
    if not v or v == "*":
        return None
    for fmt in ("%Y%m%d", "%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(v, fmt).date()
        except ValueError:
            pass
    raise NcciError(f"{where}: bad date {v[:20]!r} (want YYYYMMDD)" if where else f"bad date {v[:20]!r} (want YYYYMMDD)")


@lru_cache(maxsize=4096)
def _iso_cell(value: str) -> str | None:
    """A date cell as ISO text (None for empty or *); cached, as a file holds few distinct dates."""
    d = _date(value, "")
    return d.isoformat() if d else None


def _quarter_start(d: date) -> date:
    return date(d.year, (d.month - 1) // 3 * 3 + 1, 1)


_NAME_QUARTER = re.compile(r"(20\d\d)[-_ ]?q([1-4])", re.I)
_NAME_EFF = re.compile(r"eff[-_ ]?(\d\d)[-_](\d\d)[-_](20\d\d)", re.I)
_NAME_VERSION = re.compile(r"v(\d{3}r\d+)", re.I)
_NAME_PART = re.compile(r"-f(\d)\b", re.I)


def _name_quarter(name: str) -> date | None:
    m = _NAME_EFF.search(name)
    if m:
        return date(int(m[3]), int(m[1]), int(m[2]))
    m = _NAME_QUARTER.search(name)
    if m:
        return date(int(m[1]), (int(m[2]) - 1) * 3 + 1, 1)
    return None


def _label(d: date) -> str:
    return f"{d.year}Q{(d.month - 1) // 3 + 1}"


# ---------------------------------------------------------------- official layouts

def _text(data: bytes) -> str:
    """CMS files are ASCII or Latin-1 (the MUE file); UTF-8 is accepted too."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def detect(text: str) -> str | None:
    """Which table a file is, from its opening lines: "ptp", "mue", "aoc" or None."""
    head = "\n".join(text.splitlines()[:12]).lower()
    if re.search(r"column\s*1", head) and re.search(r"column\s*2", head):
        return "ptp"
    if "mue" in head and "hcpcs" in head:
        return "mue"
    if re.search(r"add[- ]?on", head) and "primary" in head:
        return "aoc"
    return None


def parse_ptp(text: str, where: str, version: str) -> list[tuple]:
    """Tab-delimited (or CSV) PTP rows after the notice and the wrapped header: column 1, column 2,
    pre-1996 flag, effective date, deletion date (* = none), modifier indicator, rationale."""
    rows: list[tuple] = []
    started = False
    same: dict[str, str] = {}  # one string per distinct code, date and rationale: a quarter repeats them a million times
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cells = line.split("\t") if "\t" in line else next(csv.reader([line]))
        ok = (len(cells) >= 6 and _CODE.fullmatch(cells[0].strip().upper() or "-")
              and _CODE.fullmatch(cells[1].strip().upper() or "-") and cells[5].strip() in ("0", "1", "9"))
        if not ok:
            if started:
                raise NcciError(f"{where}:{n}: not a PTP row (column 1, column 2, *, effective, deletion, "
                                f"modifier 0/1/9, rationale)")
            continue  # notice line and the header wrapped over several lines
        started = True
        c1, c2 = cells[0].strip().upper(), cells[1].strip().upper()
        why = cells[6].strip() if len(cells) > 6 else ""
        try:
            eff, dele = _iso_cell(cells[3]), _iso_cell(cells[4])
        except NcciError as e:
            raise NcciError(f"{where}:{n}: {e}") from None
        rows.append((same.setdefault(c1, c1), same.setdefault(c2, c2), eff, dele, int(cells[5]),
                     same.setdefault(why, why), version))
    if not rows:
        raise NcciError(f"{where}:1: no PTP rows found")
    return rows


def _records(text: str, where: str, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for cells in reader:
            yield reader.line_num, cells
    except csv.Error as e:
        raise NcciError(f"{where}:{reader.line_num}: {e}") from None


def parse_mue(text: str, where: str, version: str) -> list[tuple]:
    """MUE CSV: a notice record, a header whose first cell spans a line break ("HCPCS/\\nCPT Code"), then
    code, MUE value, MAI as text ("2 Date of Service Edit: Policy"), rationale."""
    rows: list[tuple] = []
    header = False
    for n, cells in _records(text, where):
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        if not header:
            header = len(cells) >= 3 and "hcpcs" in cells[0].lower() and any("mue" in c.lower() for c in cells)
            continue
        mai = re.match(r"[123]\b", cells[2]) if len(cells) >= 3 else None
        if not (mai and _CODE.fullmatch(cells[0].upper()) and cells[1].isascii() and cells[1].isdigit()):
            raise NcciError(f"{where}:{n}: not an MUE row (code, MUE value, MAI 1/2/3 text, rationale)")
        rows.append((cells[0].upper(), int(cells[1]), int(mai[0]), cells[3] if len(cells) > 3 else "", version))
    if not rows:
        raise NcciError(f"{where}:1: no MUE header (HCPCS/CPT Code, ... MUE ...) or no rows after it")
    return rows


def _aoc_columns(header: list[str]) -> dict[str, int]:
    """AOC columns by meaning, whatever their capitalisation and spacing."""
    norm = [re.sub(r"[^a-z0-9]", "", h.lower()) for h in header]

    def find(test) -> int | None:
        return next((i for i, h in enumerate(norm) if test(h)), None)

    dated = ("date", "effective", "deletion", "jurisdiction")
    cols = {
        "addon": find(lambda h: "addon" in h and "code" in h and not any(x in h for x in dated)),
        "primary": find(lambda h: "primary" in h and "code" in h and not any(x in h for x in dated)),
        "type": find(lambda h: "type" in h),
        "effective": find(lambda h: "effective" in h and "addon" not in h and "primary" not in h),
        "deleted": find(lambda h: "deletion" in h and "addon" not in h and "primary" not in h),
        "addon_deleted": find(lambda h: "addon" in h and "deletion" in h),
        "primary_deleted": find(lambda h: "primary" in h and "deletion" in h),
    }
    return {k: v for k, v in cols.items() if v is not None}


def parse_aoc(text: str, where: str, version: str) -> list[tuple]:
    """Add-on code edits (tab-delimited TXT or CSV): primary code, add-on code, edit type 1/2/3, the edit's
    and the codes' effective/deletion dates and notes, columns matched by meaning."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delim = "\t" if "\t" in first or "\t" in text[:4096] else ("|" if first.count("|") > first.count(",") else ",")
    rows: list[tuple] = []
    cols: dict[str, int] | None = None
    for n, cells in _records(text, where, delim):
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        if cols is None:
            found = _aoc_columns(cells)
            if {"addon", "primary", "type"} <= set(found):
                cols = found
            continue
        at = f"{where}:{n}"

        def cell(name: str) -> str:
            i = cols.get(name)
            return cells[i] if i is not None and i < len(cells) else ""

        primary, addon, typ = cell("primary").upper(), cell("addon").upper(), cell("type")
        if not (_CODE.fullmatch(addon) and _CODE.fullmatch(primary) and typ in ("1", "2", "3")):
            raise NcciError(f"{at}: not an add-on code edit row (primary, add-on, type 1/2/3)")
        ends = [d for d in (_date(cell("deleted"), at), _date(cell("addon_deleted"), at),
                            _date(cell("primary_deleted"), at)) if d]
        rows.append((primary, addon, int(typ), _iso(_date(cell("effective"), at)),
                     _iso(min(ends)) if ends else None, version))
    if cols is None or not rows:
        raise NcciError(f"{where}:1: no add-on code header (Primary Code, Add-on Code, AOC Edit Type) or no rows")
    return rows


_PARSERS = {"ptp": parse_ptp, "mue": parse_mue, "aoc": parse_aoc}


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def parse_file(name: str, data: bytes, effective: date | None = None, container: str = "") -> ParsedFile:
    """One CMS file (not a zip): its kind from its content; its version from its name (or its zip's); its
    effective quarter `effective` when given, else from its name (or its zip's), else its latest row date."""
    text = _text(data)
    where = f"{container}:{name}" if container else name
    kind = detect(text)
    if kind is None:
        raise NcciError(f"{where}:1: not a CMS NCCI PTP, MUE or add-on code file (no known header)")
    eff = effective or _name_quarter(name) or (_name_quarter(container) if container else None)
    m = _NAME_VERSION.search(name) or (_NAME_VERSION.search(container) if container else None)
    provisional = m[0].lower() if m else ""
    rows = _PARSERS[kind](text, where, provisional or "?")
    if eff is None:
        col = {"ptp": 2, "aoc": 3}.get(kind)
        dates = [r[col] for r in rows if col is not None and r[col]]
        if not dates:
            raise NcciError(f"{where}:1: effective quarter unknown (not in the file name); pass --effective")
        eff = _quarter_start(date.fromisoformat(max(dates)))
    version = provisional or _label(eff)
    if version != provisional:
        rows = [(*r[:-1], version) for r in rows]
    part = _NAME_PART.search(name)
    return ParsedFile(name, kind, version, part[1] if part else "", eff, rows, hashlib.sha256(data).hexdigest())


def read_files(paths: Iterable[str | os.PathLike], effective: date | None = None) -> list[ParsedFile]:
    """Every CMS file named, or held in a named zip (members other than .txt/.csv are skipped)."""
    out: list[ParsedFile] = []
    for p in paths:
        path = Path(p)
        try:
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as z:
                    members = [i for i in z.infolist() if not i.is_dir()
                               and i.filename.lower().endswith((".txt", ".csv"))]
                    if not members:
                        raise NcciError(f"{path}:0: the zip holds no .txt or .csv file")
                    for info in members:
                        if info.file_size > _MAX_MEMBER:
                            raise NcciError(f"{path}:0: zip member larger than {_MAX_MEMBER >> 20} MB")
                        out.append(parse_file(_printable(Path(info.filename).name), z.read(info), effective,
                                              str(path)))
                continue
            data = path.read_bytes()
        except (OSError, zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError) as e:
            raise NcciError(f"{path}:0: cannot read: {getattr(e, 'strerror', None) or e}") from None
        out.append(parse_file(str(path), data, effective))
    return out


def _printable(name: str) -> str:
    """A zip member's name as shown in messages: control characters (a terminal escape) become '?'."""
    return "".join(c if c.isprintable() else "?" for c in name)[:200]


# ---------------------------------------------------------------- tables

class Table:
    """One version of each kind's rows, in memory (the shipped table) or in the imported database."""

    def ptp(self, codes: frozenset[str]) -> list[PtpEdit]:
        raise NotImplementedError

    def mue(self, code: str) -> MueEdit | None:
        raise NotImplementedError

    def aoc(self, addon: str) -> list[AocEdit]:
        raise NotImplementedError


class MemoryTable(Table):
    """Rows kept as tuples by column 1 and column 2, made PtpEdits when a lookup first needs them."""

    def __init__(self, ptp: Iterable[tuple] = (), mue: Iterable[tuple] = (), aoc: Iterable[tuple] = (),
                 ptp_by_column1: dict[str, dict[str, list]] | None = None):
        """`ptp_by_column1`: PTP rows already grouped as the table keeps them (the shipped table's _LazyPtp)."""
        self._ptp: dict[str, dict[str, list]] = {} if ptp_by_column1 is None else ptp_by_column1
        for r in ptp:
            self._ptp.setdefault(r[0], {}).setdefault(r[1], []).append(r)
        self._edits: dict[tuple[str, str], list[PtpEdit]] = {}
        self._mue = {r[0]: MueEdit(*r) for r in mue}
        self._aoc: dict[str, list[AocEdit]] = {}
        for r in aoc:
            e = aoc_edit(r)
            self._aoc.setdefault(e.addon, []).append(e)

    def ptp(self, codes: frozenset[str]) -> list[PtpEdit]:
        out = []
        for a in codes:
            row = self._ptp.get(a)
            if row:
                for b in codes:
                    if b in row:
                        edits = self._edits.get((a, b))
                        if edits is None:
                            edits = self._edits[a, b] = [ptp_edit(r) for r in row[b]]
                        out.extend(edits)
        return out

    def mue(self, code: str) -> MueEdit | None:
        return self._mue.get(code)

    def aoc(self, addon: str) -> list[AocEdit]:
        return self._aoc.get(addon, [])


def _d(v: str | None) -> date | None:
    return date.fromisoformat(v) if v else None


def ptp_edit(r: tuple) -> PtpEdit:
    return PtpEdit(r[0], r[1], _d(r[2]), _d(r[3]), int(r[4]), r[5], r[6])


def aoc_edit(r: tuple) -> AocEdit:
    return AocEdit(r[0], r[1], int(r[2]), _d(r[3]), _d(r[4]), r[5])


_META = re.compile(r"(?m)^#\s*(\w+)\s*:\s*(.*)$")


def _shipped_text(kind: str) -> str:
    return resources.files("edi_pipeline.codes").joinpath("data", f"ncci_{kind}.csv").read_text(encoding="utf-8")


def _shipped_rows(text: str) -> tuple[dict[str, str], Iterator[list[str]]]:
    """A shipped table's '# name: value' header and its rows after the column names."""
    rows = csv.reader(ln for ln in text.splitlines() if not ln.startswith("#"))
    next(rows)
    return dict(_META.findall(text)), rows


# Lines of six plain fields: no quote, and no line break but "\n" (what str.splitlines also splits at), so
# csv.reader's rows are the lines split at ",".
_FIELD = '[^,"\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]*'
_PLAIN_ROWS = re.compile(f"{_FIELD}(?:,{_FIELD}){{5}}(?:\n{_FIELD}(?:,{_FIELD}){{5}})*\n?")
_RUNS = re.compile(r"(?m)^([^,\n]*),.*(?:\n\1,.*)*")  # consecutive lines of one column 1


def _ptp_row(c1: str, c2: str, eff: str, dele: str, mod: str, why: str, version: str) -> tuple:
    return c1, c2, eff or None, dele or None, mod, why, version


class _LazyPtp(dict):
    """The shipped PTP rows as MemoryTable keeps them (column 1 -> column 2 -> rows), a column 1's rows
    split from its lines when a lookup first asks for it: a file bills a few of the ~80 codes, and
    splitting all 18,000 rows at every start cost more than the rest of loading the tables. Made (by
    `of`) only when every line after the header is six plain fields and no comment follows it."""

    def __init__(self, body: str, header: int):
        super().__init__()
        self._body, self.header = body, header  # header: where the column names end in the file's text
        self.version = "shipped"  # of every row (the file's '# version:')
        self._runs: dict[str, list[tuple[int, int]]] = {}
        for m in _RUNS.finditer(body):
            self._runs.setdefault(m[1], []).append(m.span())

    @classmethod
    def of(cls, text: str) -> "_LazyPtp | None":
        """The table of a shipped PTP file's text, or None when it must go through csv.reader."""
        end = 0
        while text.startswith("#", end):  # the leading comments, then the column names
            end = text.find("\n", end) + 1
            if not end:
                return None
        header = text.find("\n", end) + 1
        body = text[header:]
        names = text[end:header]
        if not header or not names.strip() or '"' in names or body.startswith("#") or "\n#" in body \
                or not _PLAIN_ROWS.fullmatch(body):
            return None
        return cls(body, header)

    def get(self, code, default=None):
        rows = dict.get(self, code)
        if rows is None:
            spans = self._runs.pop(code, None)
            if spans is None:
                return default
            rows = self[code] = {}
            for start, end in spans:
                for line in self._body[start:end].split("\n"):
                    row = _ptp_row(*line.split(","), self.version)
                    rows.setdefault(row[1], []).append(row)
        return rows


@lru_cache(maxsize=1)
def shipped() -> tuple[MemoryTable, dict[str, dict[str, str]]]:
    """The table shipped in edi_pipeline/codes/data/ncci_*.csv, and each kind's source/version/effective."""
    meta, rows = {}, {}
    texts = {k: _shipped_text(k) for k in KINDS}
    lazy = _LazyPtp.of(texts["ptp"])
    if lazy is not None:
        meta["ptp"] = dict(_META.findall(texts["ptp"], 0, lazy.header))  # no comment line after the header
    v = {}
    for k in ("mue", "aoc") if lazy is not None else KINDS:
        meta[k], rows[k] = _shipped_rows(texts[k])
        v[k] = meta[k].get("version", "shipped")
    if lazy is not None:
        v["ptp"] = lazy.version = meta["ptp"].get("version", "shipped")
    table = MemoryTable(
        ((c1, c2, eff or None, dele or None, mod, why, v["ptp"]) for c1, c2, eff, dele, mod, why in rows.get("ptp", ())),
        ((code, int(mue), int(mai), why, v["mue"]) for code, mue, mai, why in rows["mue"]),
        ((primary, addon, typ, eff or None, dele or None, v["aoc"]) for primary, addon, typ, eff, dele in rows["aoc"]),
        ptp_by_column1=lazy)
    return table, meta


class Ncci:
    """Lookups by code and date of service over the shipped table and the imported versions."""

    def __init__(self, imported: Iterable[tuple[str, date, Table]] = ()):
        """`imported`: (kind, effective date, table) of each imported version (store.ncci_tables reads them)."""
        self.shipped = shipped()[0]
        self._versions: dict[str, list[tuple[date, Table]]] = {k: [] for k in KINDS}
        for kind, eff, t in imported:
            self._versions[kind].append((eff, t))
        for v in self._versions.values():
            v.sort(key=lambda x: x[0])
        self._addon: dict[str, bool] = {}

    def table(self, kind: str, d: date | None) -> Table:
        """The imported version in force on d (the latest whose effective date is on or before it), else
        the shipped table."""
        chosen: Table = self.shipped
        versions = self._versions[kind]
        if not versions:
            return chosen
        for eff, t in versions:
            if d is None or eff <= d:
                chosen = t
        return chosen

    def ptp(self, codes: frozenset[str], d: date | None) -> list[PtpEdit]:
        """The PTP edit of each (column 1, column 2) pair among codes in force on d. Where CMS repeats a
        pair, the row with the latest effective date wins, then the lowest indicator."""
        best: dict[tuple[str, str], PtpEdit] = {}
        for e in self.table("ptp", d).ptp(codes):
            if e.column1 == e.column2 or not e.active(d):
                continue
            key = (e.column1, e.column2)
            old = best.get(key)
            if old is None or (e.effective or date.min, -e.modifier) > (old.effective or date.min, -old.modifier):
                best[key] = e
        return list(best.values())

    def pair(self, column1: str, column2: str, d: date | None) -> PtpEdit | None:
        return next((e for e in self.ptp(frozenset((column1, column2)), d)
                     if e.column1 == column1 and e.column2 == column2), None)

    def cite(self, a: str, b: str, d: date | None) -> str:
        """"; NCCI PTP ..." naming the PTP row of the pair a/b (either order) in force on d, or ""."""
        e = self.pair(a, b, d) or self.pair(b, a, d)
        return f"; {e.cite()}" if e else ""

    def mue(self, code: str, d: date | None) -> MueEdit | None:
        return self.table("mue", d).mue(code)

    def aoc(self, addon: str, d: date | None) -> list[AocEdit]:
        """The add-on code edits of `addon` in force on d (empty when it is not an add-on code)."""
        edits = self.table("aoc", d).aoc(addon)
        return [e for e in edits if e.active(d)] if edits else []

    def is_addon(self, code: str) -> bool:
        """Whether the shipped table or an imported version has an add-on code edit for `code`, on any date."""
        got = self._addon.get(code)
        if got is None:
            got = self._addon[code] = bool(self.shipped.aoc(code)) or any(t.aoc(code) for _, t in self._versions["aoc"])
        return got

    def primaries(self, addon: str, d: date | None) -> frozenset[str] | None:
        """The defined primary codes of an add-on on d (None when the table has no edit for it)."""
        edits = self.aoc(addon, d)
        if not edits:
            return None
        return frozenset(e.primary for e in edits if e.primary != CONTRACTOR)


@lru_cache(maxsize=1)
def shipped_ncci() -> Ncci:
    """Lookups over the shipped table alone (no store, or no imports in it)."""
    return Ncci()
