"""Code tables: load the shipped data files (or a user's newer ones) into frozen, cached lookups.

The NCCI tables (PTP pairs, MUEs, add-on codes) are ncci.py's: CMS's files, shipped and imported."""

from __future__ import annotations

import calendar
import csv
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Iterable, Mapping, NamedTuple

from edi_pipeline.core.errors import EdiError, Severity

# Table name -> shipped file in edi_pipeline/codes/data. The names are the keys of load_tables(overrides=...).
TABLE_FILES: Mapping[str, str] = MappingProxyType({
    "clbp_dx": "clbp_dx.csv",
    "unlisted": "unlisted.csv",
    "code_groups": "code_groups.toml",
    "carc": "carc.csv",
    "rarc": "rarc.csv",
    "denial_backlinks": "denial_backlinks.csv",
    "pos": "pos.csv",
    "claim_status": "claim_status.csv",
    "rules": "rules.toml",
})
PROFILES_FILE = "payer_profiles.toml"

CATEGORIES = frozenset({
    "coding/bundling", "medical necessity", "authorization", "eligibility", "timely filing",
    "duplicate", "missing information", "benefit limit", "coordination of benefits", "non-covered",
    "contractual", "patient responsibility", "other",
})
ACTIONS = frozenset({"correct and resubmit", "appeal", "write off", "bill patient"})
RULE_PROFILES = frozenset({"all", "medicare", "per_payer"})
GROUP_CODES = frozenset({"CO", "OA", "PI", "PR", "CR"})


class CodeTableError(EdiError):
    """A code table or payer-profile file is missing, malformed or inconsistent."""


class TableMeta(NamedTuple):
    source: str
    effective: date | None


@dataclass(frozen=True, slots=True)
class CarcInfo:
    code: str
    description: str
    category: str
    default_action: str | None  # None = informational, or decided by the RARC
    deactivated: date | None  # retirement date when known
    active: bool  # False for a retired code, dated or not
    group_hint: str | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class RarcInfo:
    code: str
    description: str
    category: str | None
    deactivated: date | None
    active: bool


@dataclass(frozen=True, slots=True)
class Backlink:
    """One 'Denial back-links' alternative; empty fields match anything. group, carc and rarc hold
    alternatives; procedure_set is the denied line's code group, with_set one another line of the
    claim must be in, when a claim condition (BACKLINK_CONDITIONS)."""

    group: frozenset[str]
    carc: frozenset[str]
    rarc: frozenset[str]
    procedure_set: str
    with_set: str
    when: str
    preventable_by: tuple[str, ...]


# claim conditions a back-link can ask for; denials.py computes them from the stored 837
BACKLINK_CONDITIONS = frozenset({"corrected_no_f8"})  # CLM05-3 = 7 or 8 sent without REF*F8


@dataclass(frozen=True, slots=True)
class RuleInfo:
    id: str
    profile: str  # all / medicare / per_payer
    severity: Severity
    action: str  # correction name, or "none"
    summary: str
    trigger: str
    correction: str
    groups: tuple[str, ...]
    sources: tuple[str, ...]  # resolved "id title - url"


@dataclass(frozen=True, slots=True)
class Limits:
    visits_90_days: int = 12
    kx_from_visit: int = 13
    visits_12_months_kx: int = 20
    max_12_months: int = 20
    tpi_sessions_12_months: int = 3


@dataclass(frozen=True)
class CodeTables:
    clbp_dx: frozenset[str]  # ICD-10-CM without the dot
    unlisted: frozenset[str]
    groups: Mapping[str, frozenset[str]]
    carc: Mapping[str, CarcInfo]
    rarc: Mapping[str, RarcInfo]
    backlinks: tuple[Backlink, ...]
    pos: Mapping[str, str]
    claim_status: Mapping[str, str]
    rules: Mapping[str, RuleInfo]
    limits: Limits
    meta: Mapping[str, TableMeta]

    @property
    def em_codes(self) -> frozenset[str]:
        return self.groups.get("em_office", frozenset())

    def in_group(self, code: str, name: str) -> bool:
        if name not in self.groups:
            raise KeyError(f"unknown code group {name!r}")
        return code.strip().upper() in self.groups[name]

    def is_anesthesia(self, code: str) -> bool:
        return self.in_group(code, "anesthesia")

    @cached_property
    def _backlinks_by_carc(self) -> dict[str, tuple[Backlink, ...]]:
        """CARC -> the back-links that can match it, in table order ("" -> those naming no CARC)."""
        carcs = {c for link in self.backlinks for c in link.carc}
        return {c: tuple(link for link in self.backlinks if not link.carc or c in link.carc) for c in carcs | {""}}

    def backlinks_for(self, group: str, carc: str, rarcs: Iterable[str] = (), procedure: str | None = None,
                      others: Iterable[str] = (), facts: Iterable[str] = ()) -> tuple[str, ...]:
        """Rule ids that would have prevented this adjustment on the line billing `procedure` (None:
        no line known), beside the claim's `others` line codes, in table order, without repeats.

        A named rule is kept only when `procedure` is in one of its code groups (a rule without
        groups, or not yet in the catalogue, takes any line): a CO-119 on 97110 is no visit cap."""
        remarks = {r.strip().upper() for r in rarcs}
        group, carc = group.strip().upper(), carc.strip().upper()
        proc = (procedure or "").strip().upper()
        other = {o.strip().upper() for o in others}
        facts = set(facts)
        found: dict[str, None] = {}
        by_carc = self._backlinks_by_carc
        for link in by_carc.get(carc, by_carc[""]):
            if (link.group and group not in link.group) or (link.rarc and not link.rarc & remarks) \
                    or (link.when and link.when not in facts):
                continue
            if link.procedure_set and proc not in self.groups[link.procedure_set]:
                continue
            if link.with_set and other.isdisjoint(self.groups[link.with_set]):
                continue
            for rid in link.preventable_by:
                info = self.rules.get(rid)
                if info is None or not info.groups or any(proc in self.groups[g] for g in info.groups):
                    found[rid] = None
        return tuple(found)


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    filing_indicators: frozenset[str]
    medicare_rules: bool
    prior_auth_codes: frozenset[str]
    auth_all_codes: bool  # "*" in prior_auth_codes
    prior_auth_exempt: frozenset[str] = frozenset()  # never need REF*G1, even under "*" (E/M)
    filing_limit: tuple[int, str] | None = None  # (n, "months" or "days") after the date of service
    disabled_rules: frozenset[str] = frozenset()
    tpi_one_per_billing_provider: bool = False  # TPI-ONE-LINE/-CODE across rendering providers (A57751)
    guide_tpi_imaging: bool = False  # GUIDE-TPI-MEDICARE applies (MAC LCDs L36859, L34211)
    turnaround_days: int = 30  # days to an 835: later, the worklist lists the claim as open too long (NV)

    def requires_auth(self, code: str) -> bool:
        code = code.strip().upper()
        return code not in self.prior_auth_exempt and (self.auth_all_codes or code in self.prior_auth_codes)

    def filing_deadline(self, service_date: date) -> date | None:
        """The last day a claim for `service_date` can be filed, or None when the profile sets no limit."""
        if self.filing_limit is None:
            return None
        n, unit = self.filing_limit
        if unit == "days":
            return service_date + timedelta(days=n)
        month = service_date.month - 1 + n
        year, month = service_date.year + month // 12, month % 12 + 1
        last = calendar.monthrange(year, month)[1]
        return date(year, month, min(service_date.day, last))

    def applies(self, rule_profile: str) -> bool:
        """Whether a rule of this catalogue profile (all/medicare/per_payer) runs for this payer."""
        return rule_profile != "medicare" or self.medicare_rules


@dataclass(frozen=True)
class PayerProfiles:
    profiles: Mapping[str, Profile]
    by_indicator: Mapping[str, str]
    payer_ids: Mapping[str, str]
    default: str
    meta: TableMeta

    def profile_for(self, filing_indicator: str | None, payer_id: str | None = None) -> Profile:
        """Payer id mapping first, then SBR09, then the default profile."""
        if payer_id and payer_id.strip() in self.payer_ids:
            return self.profiles[self.payer_ids[payer_id.strip()]]
        name = self.by_indicator.get((filing_indicator or "").strip().upper(), self.default)
        return self.profiles[name]


# ---------------------------------------------------------------- public loaders

def load_tables(overrides: Mapping[str, Path | str] | None = None) -> CodeTables:
    """Shipped tables, each replaceable by a user file named in overrides (keys: TABLE_FILES).

    carc and rarc overrides are laid over the shipped table (see load_carc_csv); others replace it.
    Results are cached per set of files (path + modification time)."""
    if not overrides:  # the shipped tables: asked for per claim by checks and rules
        return _load_tables(())
    overrides = dict(overrides)
    unknown = set(overrides) - set(TABLE_FILES)
    if unknown:
        raise CodeTableError(f"unknown code table(s): {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(TABLE_FILES)}")
    return _load_tables(tuple(sorted((k, *_file_key(v)) for k, v in overrides.items())))


def load_profiles(path: Path | str | None = None) -> PayerProfiles:
    """The shipped payer profiles, or a user's copy (which replaces them whole)."""
    return _load_profiles(_file_key(path) if path is not None else None)


def load_carc_csv(path: Path | str, base: Mapping[str, CarcInfo] | None = None) -> Mapping[str, CarcInfo]:
    """A full CARC list (columns code, description[, deactivated], optionally the others) over base.

    Codes already known keep their category/action/group hint unless the file gives them."""
    if base is None:
        base = load_tables().carc
    _, rows = _parse_csv(Path(path).read_text(encoding="utf-8-sig"), str(path))
    return _carc_table(rows, str(path), base)


def is_anesthesia(code: str, tables: CodeTables | None = None) -> bool:
    """Anesthesia code (00100-01999 by default; the `anesthesia` code group)."""
    return (tables or load_tables()).is_anesthesia(code)


# ---------------------------------------------------------------- code shapes

_SHAPES = {
    "icd10cm": re.compile(r"[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}"),  # X12 form: no dot
    "cpt": re.compile(r"[0-9]{4}[0-9FTU]"),  # Category I, or II (F), III (T), PLA (U)
    "hcpcs": re.compile(r"[A-V][0-9]{4}"),  # Level II
}
_SHAPES["procedure"] = re.compile(f"{_SHAPES['cpt'].pattern}|{_SHAPES['hcpcs'].pattern}")
SHAPE_KINDS = frozenset(_SHAPES) | {"npi"}


def code_shape_ok(kind: str, value: str) -> bool:
    """Whether value looks like a code of kind (icd10cm, cpt, hcpcs, procedure, npi); not a lookup."""
    if kind == "npi":
        return npi_valid(value)
    try:
        return _SHAPES[kind].fullmatch(value or "") is not None
    except KeyError:
        raise ValueError(f"unknown code kind {kind!r}; known: {', '.join(sorted(SHAPE_KINDS))}") from None


@lru_cache(maxsize=65536)
def npi_valid(npi: str) -> bool:
    """10 digits whose Luhn check (over the 80840 prefix + NPI) holds."""
    if not (isinstance(npi, str) and len(npi) == 10 and npi.isascii() and npi.isdigit()):
        return False
    total = 0
    for i, ch in enumerate(reversed("80840" + npi)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# ---------------------------------------------------------------- file reading

def _file_key(path: Path | str) -> tuple[str, int]:
    p = Path(path).expanduser().resolve()
    try:
        return str(p), p.stat().st_mtime_ns
    except OSError as e:
        raise CodeTableError(f"cannot read code table {path}: {e.strerror}") from None


def _read(name: str, files: Mapping[str, str]) -> tuple[str, str]:
    """(text, origin) of a table: the user's file if given, else the shipped one."""
    if name in files:
        path = files[name]
        try:
            return Path(path).read_text(encoding="utf-8-sig"), path
        except (OSError, UnicodeDecodeError) as e:
            raise CodeTableError(f"cannot read code table {path}: {e}") from None
    fname = TABLE_FILES.get(name, name)
    return resources.files("edi_pipeline.codes").joinpath("data", fname).read_text(encoding="utf-8"), f"data/{fname}"


def _parse_date(value: str | None, origin: str) -> date | None:
    if not value:
        return None
    for fmt in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(value.strip(), fmt).date()
        except ValueError:
            pass
    raise CodeTableError(f"{origin}: bad date {value!r} (want YYYY-MM-DD)")


_META_LINE = re.compile(r"#\s*(source|effective)\s*:\s*(.*)", re.I)


def _parse_csv(text: str, origin: str) -> tuple[TableMeta, list[dict[str, str]]]:
    """Leading '# source:' / '# effective:' comments, then a header row; keys lower-cased."""
    lines = text.splitlines()
    meta: dict[str, str] = {}
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
        m = _META_LINE.match(lines[i].strip())
        if m:
            meta.setdefault(m[1].lower(), m[2].strip())
        i += 1
    reader = csv.DictReader(lines[i:])
    if not reader.fieldnames:
        raise CodeTableError(f"{origin}: no header row")
    rows = []
    for row in reader:
        clean = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        if any(clean.values()) and not next(iter(clean.values()), "").startswith("#"):
            rows.append(clean)
    return TableMeta(meta.get("source") or origin, _parse_date(meta.get("effective"), origin)), rows


def _need(rows: list[dict[str, str]], cols: Iterable[str], origin: str) -> None:
    missing = [c for c in cols if rows and c not in rows[0]]
    if missing:
        raise CodeTableError(f"{origin}: missing column(s) {', '.join(missing)}")


def _toml(text: str, origin: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CodeTableError(f"{origin}: {e}") from None


def _toml_meta(doc: dict, origin: str) -> TableMeta:
    meta = doc.get("meta", {})
    return TableMeta(str(meta.get("source") or origin), _parse_date(str(meta.get("effective") or ""), origin))


def _norm(code: str) -> str:
    return code.strip().upper()


def _norm_dx(code: str) -> str:
    return code.strip().upper().replace(".", "")


# ---------------------------------------------------------------- code lists and ranges

_RANGE_END = re.compile(r"([A-Z]*)([0-9]+)([A-Z]*)")


def _expand_range(lo: str, hi: str, origin: str) -> list[str]:
    a, b = _RANGE_END.fullmatch(lo), _RANGE_END.fullmatch(hi)
    if not (a and b and a[1] == b[1] and a[3] == b[3] and len(a[2]) == len(b[2]) and a[2] <= b[2]):
        raise CodeTableError(f"{origin}: bad code range {lo}-{hi}")
    width = len(a[2])
    return [f"{a[1]}{n:0{width}d}{a[3]}" for n in range(int(a[2]), int(b[2]) + 1)]


def _expand(items: Iterable[str], origin: str, groups: Mapping[str, list[str]] | None = None,
            seen: tuple[str, ...] = ()) -> frozenset[str]:
    """Codes, "LOW-HIGH" ranges and (when groups is given) "@group" references."""
    out: set[str] = set()
    for raw in items:
        item = _norm(str(raw))
        if item.startswith("@") and groups is not None:
            ref = item[1:].lower()
            if ref not in groups:
                raise CodeTableError(f"{origin}: unknown code group @{ref}")
            if ref in seen:
                raise CodeTableError(f"{origin}: code group cycle {' -> '.join((*seen, ref))}")
            out |= _expand(groups[ref], origin, groups, (*seen, ref))
        elif "-" in item:
            out.update(_expand_range(*item.split("-", 1), origin))
        elif item:
            out.add(item)
    return frozenset(out)


# ---------------------------------------------------------------- table builders

_STOP_COLUMNS = ("deactivated", "stop", "stop date", "deactivation date")


def _deactivation_of(row: dict[str, str], origin: str, old: CarcInfo | RarcInfo | None) -> tuple[date | None, bool]:
    """From the row's deactivated column (or an official list's 'stop'), else the code's earlier state."""
    for col in _STOP_COLUMNS:
        if col in row:
            return _deactivation(row[col], origin)
    return (old.deactivated, old.active) if old else (None, True)


def _deactivation(value: str, origin: str) -> tuple[date | None, bool]:
    """(date, active): empty = active; 'NV' (or any non-date mark) = retired on an unverified date."""
    if not value:
        return None, True
    try:
        return _parse_date(value, origin), False
    except CodeTableError:
        return None, False


def _carc_table(rows: list[dict[str, str]], origin: str,
                base: Mapping[str, CarcInfo] | None = None) -> Mapping[str, CarcInfo]:
    _need(rows, ("code", "description"), origin)
    table = dict(base or {})
    for row in rows:
        code = _norm(row["code"])
        old = table.get(code)
        category = row.get("category") or (old.category if old else "other")
        action = row["default_action"] if "default_action" in row else (old.default_action if old else "")
        if category not in CATEGORIES:
            raise CodeTableError(f"{origin}: CARC {code}: unknown category {category!r}")
        if action and action not in ACTIONS:
            raise CodeTableError(f"{origin}: CARC {code}: unknown default_action {action!r}")
        deactivated, active = _deactivation_of(row, origin, old)
        table[code] = CarcInfo(
            code=code,
            description=row["description"] or (old.description if old else ""),
            category=category,
            default_action=action or None,
            deactivated=deactivated,
            active=active,
            group_hint=row.get("group_hint") or (old.group_hint if old else None),
            note=row.get("note") or (old.note if old else ""),
        )
    return MappingProxyType(table)


def _rarc_table(rows: list[dict[str, str]], origin: str,
                base: Mapping[str, RarcInfo] | None = None) -> Mapping[str, RarcInfo]:
    _need(rows, ("code", "description"), origin)
    table = dict(base or {})
    for row in rows:
        code = _norm(row["code"])
        old = table.get(code)
        category = row.get("category") or (old.category if old else None)
        if category and category not in CATEGORIES:
            raise CodeTableError(f"{origin}: RARC {code}: unknown category {category!r}")
        deactivated, active = _deactivation_of(row, origin, old)
        table[code] = RarcInfo(code, row["description"] or (old.description if old else ""),
                               category, deactivated, active)
    return MappingProxyType(table)


def _rules_table(doc: dict, origin: str, groups: Mapping[str, frozenset[str]]) -> Mapping[str, RuleInfo]:
    sources = {str(k): str(v) for k, v in doc.get("sources", {}).items()}
    rules = {}
    for rid, r in doc.get("rules", {}).items():
        try:
            info = RuleInfo(
                id=rid, profile=r["profile"], severity=Severity(r["severity"]), action=r["action"],
                summary=r["summary"], trigger=r["trigger"], correction=r["correction"],
                groups=tuple(r.get("groups", ())),
                sources=tuple(f"{s} {sources[s]}" for s in r.get("sources", ())),
            )
        except KeyError as e:
            raise CodeTableError(f"{origin}: rule {rid}: missing field or unknown source {e.args[0]!r}") from None
        except ValueError:
            raise CodeTableError(f"{origin}: rule {rid}: bad profile or severity") from None
        if info.profile not in RULE_PROFILES:
            raise CodeTableError(f"{origin}: rule {rid}: bad profile or severity")
        bad = [g for g in info.groups if g not in groups]
        if bad:
            raise CodeTableError(f"{origin}: rule {rid}: unknown code group(s) {', '.join(bad)}")
        rules[rid] = info
    return MappingProxyType(rules)


def _limits(doc: dict, origin: str) -> Limits:
    raw = doc.get("limits", {})
    known = Limits.__dataclass_fields__
    extra = set(raw) - set(known)
    if extra:
        raise CodeTableError(f"{origin}: unknown limit(s) {', '.join(sorted(extra))}")
    return Limits(**{k: int(v) for k, v in raw.items()})


@lru_cache(maxsize=16)
def _load_tables(key: tuple[tuple[str, str, int], ...]) -> CodeTables:
    files = {name: path for name, path, _ in key}
    meta: dict[str, TableMeta] = {}

    def csv_table(name: str, cols: tuple[str, ...]) -> tuple[list[dict[str, str]], str]:
        text, origin = _read(name, files)
        meta[name], rows = _parse_csv(text, origin)
        _need(rows, cols, origin)
        return rows, origin

    rows, _ = csv_table("clbp_dx", ("code",))
    clbp_dx = frozenset(_norm_dx(r["code"]) for r in rows)

    rows, _ = csv_table("unlisted", ("code",))
    unlisted = frozenset(_norm(r["code"]) for r in rows)

    text, origin = _read("code_groups", files)
    doc = _toml(text, origin)
    meta["code_groups"] = _toml_meta(doc, origin)
    raw_groups = {k.lower(): list(v) for k, v in doc.get("groups", {}).items()}
    groups = {name: _expand(items, origin, raw_groups, (name,)) for name, items in raw_groups.items()}

    def overlay(name: str, build):
        """carc/rarc: the shipped table, with the user's file (if any) laid over it."""
        meta[name], rows = _parse_csv(*_read(name, {}))
        table = build(rows, f"data/{TABLE_FILES[name]}")
        if name in files:
            text, origin = _read(name, files)
            meta[name], rows = _parse_csv(text, origin)
            table = build(rows, origin, table)
        return table

    carc = overlay("carc", _carc_table)
    rarc = overlay("rarc", _rarc_table)

    rows, _ = csv_table("pos", ("code", "name"))
    pos = {_norm(r["code"]).zfill(2): r["name"] for r in rows}

    rows, _ = csv_table("claim_status", ("code", "meaning"))
    claim_status = {_norm(r["code"]): r["meaning"] for r in rows}

    text, origin = _read("rules", files)
    doc = _toml(text, origin)
    meta["rules"] = _toml_meta(doc, origin)
    rules = _rules_table(doc, origin, groups)
    limits = _limits(doc, origin)

    rows, origin = csv_table("denial_backlinks", ("group", "carc", "rarc", "procedure_set", "preventable_by"))
    backlinks = _backlinks_table(rows, origin, groups, rules)

    return CodeTables(
        clbp_dx=clbp_dx, unlisted=unlisted,
        groups=MappingProxyType(groups), carc=carc, rarc=rarc, backlinks=tuple(backlinks),
        pos=MappingProxyType(pos), claim_status=MappingProxyType(claim_status),
        rules=rules, limits=limits, meta=MappingProxyType(meta),
    )


def _backlinks_table(rows: list[dict[str, str]], origin: str, groups: Mapping[str, frozenset[str]],
                     rules: Mapping[str, RuleInfo]) -> tuple[Backlink, ...]:
    def alternatives(text: str) -> frozenset[str]:
        return frozenset(_norm(x) for x in text.split("|") if x.strip())

    out = []
    for r in rows:
        link = Backlink(alternatives(r["group"]), alternatives(r["carc"]), alternatives(r["rarc"]),
                        r["procedure_set"].lower(), r.get("with_set", "").lower(), r.get("when", "").lower(),
                        tuple(x.strip() for x in r["preventable_by"].split("|") if x.strip()))
        if link.group - GROUP_CODES:
            raise CodeTableError(f"{origin}: unknown group code(s) {', '.join(sorted(link.group - GROUP_CODES))}")
        for name in (link.procedure_set, link.with_set):
            if name and name not in groups:
                raise CodeTableError(f"{origin}: unknown code group {name}")
        if link.when and link.when not in BACKLINK_CONDITIONS:
            raise CodeTableError(f"{origin}: unknown condition {link.when!r}; known: "
                                 f"{', '.join(sorted(BACKLINK_CONDITIONS))}")
        bad = [x for x in link.preventable_by if x not in rules]
        if bad or not link.preventable_by:
            raise CodeTableError(f"{origin}: unknown or missing rule id(s) {', '.join(bad)}")
        out.append(link)
    return tuple(out)


PROFILE_KEYS = frozenset({"filing_indicators", "medicare_rules", "prior_auth_codes", "prior_auth_exempt",
                          "filing_limit_months", "filing_limit_days", "disabled_rules",
                          "tpi_one_per_billing_provider", "guide_tpi_imaging", "turnaround_days", "note"})


def _filing_limit(p: dict, origin: str) -> tuple[int, str] | None:
    given = [(unit, p[f"filing_limit_{unit}"]) for unit in ("months", "days") if f"filing_limit_{unit}" in p]
    if not given:
        return None
    if len(given) > 1:
        raise CodeTableError(f"{origin}: give filing_limit_months or filing_limit_days, not both")
    unit, n = given[0]
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise CodeTableError(f"{origin}: filing_limit_{unit} {n!r} is not a positive whole number")
    return n, unit


def _turnaround(p: dict, origin: str) -> int:
    n = p.get("turnaround_days", 30)  # as Profile's default
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise CodeTableError(f"{origin}: turnaround_days {n!r} is not a positive whole number")
    return n


@lru_cache(maxsize=8)
def _load_profiles(key: tuple[str, int] | None) -> PayerProfiles:
    text, origin = _read("profiles", {"profiles": key[0]}) if key else _read(PROFILES_FILE, {})
    doc = _toml(text, origin)
    profiles: dict[str, Profile] = {}
    by_indicator: dict[str, str] = {}
    known_rules = set(_load_tables(()).rules)
    for name, p in doc.get("profiles", {}).items():
        extra = set(p) - PROFILE_KEYS
        if extra:
            why = ("; preserve_refs was dropped (the scrubber never changes a 2300 REF)"
                   if "preserve_refs" in extra else "")
            raise CodeTableError(f"{origin}: profile {name}: unknown key(s) {', '.join(sorted(extra))}{why}")
        codes = [str(c) for c in p.get("prior_auth_codes", [])]
        disabled = frozenset(_norm(str(x)) for x in p.get("disabled_rules", []))
        if disabled - known_rules:
            raise CodeTableError(f"{origin}: profile {name}: unknown rule id(s) in disabled_rules: "
                                 f"{', '.join(sorted(disabled - known_rules))}")
        profile = Profile(
            name=name,
            filing_indicators=frozenset(_norm(str(x)) for x in p.get("filing_indicators", [])),
            medicare_rules=bool(p.get("medicare_rules", False)),
            prior_auth_codes=_expand((c for c in codes if c.strip() != "*"), origin),
            auth_all_codes=any(c.strip() == "*" for c in codes),
            prior_auth_exempt=_expand((str(c) for c in p.get("prior_auth_exempt", [])), origin),
            filing_limit=_filing_limit(p, f"{origin}: profile {name}"),
            disabled_rules=disabled,
            tpi_one_per_billing_provider=bool(p.get("tpi_one_per_billing_provider", False)),
            guide_tpi_imaging=bool(p.get("guide_tpi_imaging", False)),
            turnaround_days=_turnaround(p, f"{origin}: profile {name}"),
        )
        for ind in profile.filing_indicators:
            if ind in by_indicator:
                raise CodeTableError(f"{origin}: SBR09 {ind} is in profiles {by_indicator[ind]} and {name}")
            by_indicator[ind] = name
        profiles[name] = profile
    default = str(doc.get("meta", {}).get("default_profile", "commercial"))
    if default not in profiles:
        raise CodeTableError(f"{origin}: default profile {default!r} is not defined")
    payer_ids = {str(k).strip(): str(v) for k, v in doc.get("payer_ids", {}).items()}
    bad = sorted({v for v in payer_ids.values() if v not in profiles})
    if bad:
        raise CodeTableError(f"{origin}: [payer_ids] names unknown profile(s) {', '.join(bad)}")
    return PayerProfiles(MappingProxyType(profiles), MappingProxyType(by_indicator),
                         MappingProxyType(payer_ids), default, _toml_meta(doc, origin))
