"""The analyst report: one offline HTML page of the practice's health (KPIs, monthly trends, claims to work).

Charts are inline SVG drawn here (horizontal bars, monthly lines and stacked bars): no script, no network,
a few kB per chart. Money stays Decimal until it is placed on an axis. A section with no data says what is
missing and how to get it instead of drawing an empty grid.
"""

from __future__ import annotations

import heapq
import html
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Iterable

from edi_pipeline.codes.tables import CodeTables, load_tables
from edi_pipeline.analytics.denials import Denial, iter_denials
from edi_pipeline.analytics.reconcile import Aging, Reconciliation, reconcile_stream
from edi_pipeline.store.store import Store
from edi_pipeline.core.values import from_cents
from edi_pipeline.core.files import atomic_output

UNKNOWN = "(unknown)"
TREND_PAYERS = 6  # payers drawn one line each in the trend charts; the rest are summed as "other payers"
DAYS_IN_AR_WINDOW = 90  # average daily charges over the last 90 days of service
CLAIMS_TO_WORK = 25  # rows of the report's claims to work
NEXT_ACTION = {"open": "check claim status with the payer", "reversed": "await re-adjudication or resubmit",
               "denied": "correct and resubmit, or appeal", "partially paid": "review the underpayment"}
LEGEND_WIDTH = 230  # room right of a monthly chart for a legend line of 24 characters
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf",
           "#bcbd22")


@dataclass
class Kpi:
    name: str
    value: str | None  # None: not computable from the store
    detail: str  # how it is counted, or what is missing and how to get it


@dataclass
class ReportData:
    as_of: date
    kpis: list[Kpi]
    by_payer: list[dict]  # payer, claims (adjudicated), denied_claims, denial_rate, denied_dollars
    by_category: list[dict]  # category, count, dollars
    top_carcs: list[dict]  # carc, description, count, dollars
    by_rule: list[dict]  # rule, count, dollars
    aging: list[dict]  # bucket, claims, balance (every unpaid balance, by days since service)
    trends: dict[str, dict]  # "dos"/"paid" -> {"months", "payer_rate": {payer: [rate|None]}, "category": {...}}
    worklist: list[dict]  # claims_to_work rows
    denials: int
    denied_dollars: Decimal
    missing: dict[str, str] = field(default_factory=dict)  # section -> what is missing and how to get it


def _d(cents: int | None) -> Decimal:
    return from_cents(cents or 0)


def _pct(n: int, total: int) -> str | None:
    return f"{n / total:.1%}" if total else None


def open_balance(c) -> int:
    """Cents still owed on a reconciled claim: billed less paid, patient share and contractual adjustments."""
    if c.status in ("paid", "voided"):
        return 0
    contractual = c.adjustments - c.denied
    return max((c.billed or 0) - c.paid - c.patient_responsibility - contractual, 0)


def _to_work_row(c, at_risk: int) -> dict:
    return {"patient_control_number": c.patient_control_number, "payer": c.payer or UNKNOWN,
            "service_date": c.service_date, "status": c.status, "age_days": c.days_outstanding,
            "at_risk": _d(at_risk), "next_action": NEXT_ACTION.get(c.status, "review")}


def _work_order(r: dict) -> tuple:
    return (-r["at_risk"], -(r["age_days"] or 0), r["patient_control_number"])


def claims_to_work(claims: Iterable, top: int | None = 25) -> list[dict]:
    """Unpaid, denied, reversed and partly paid balances of reconciled claims (a Reconciliation's, or any
    iterable of them), largest dollars at risk first; only the `top` are ever held."""
    rows: list[dict] = []
    for c in getattr(claims, "claims", claims):
        at_risk = open_balance(c)
        if at_risk > 0:
            rows.append(_to_work_row(c, at_risk))
            if top and len(rows) >= 4 * top:
                rows = heapq.nsmallest(top, rows, key=_work_order)
    rows.sort(key=_work_order)
    return rows[:top] if top else rows


def first_pass_acceptance(events: Iterable[tuple[str, str, str]]) -> tuple[int, int]:
    """(claims accepted on their first 277CA, claims with a 277CA) from (pcn, event date, STC01-1 category)
    rows: a claim counts as accepted first pass when its earliest 277CA category is A2 (or A1)."""
    first: dict[str, tuple[str, str]] = {}
    for pcn, when, category in events:
        if pcn not in first or (when or "") < first[pcn][0]:
            first[pcn] = (when or "", category or "")
    return sum(1 for _, cat in first.values() if cat in ("A1", "A2")), len(first)


class _Figures:
    """The report's sums, added up claim group by claim group (one pass over the store)."""

    def __init__(self, as_of: date, top: int):
        self.as_of, self.top = as_of, top
        self.since = (as_of - timedelta(days=DAYS_IN_AR_WINDOW)).isoformat()
        self.claims = 0
        self.adjudicated: dict[str, int] = defaultdict(int)  # payer -> claims with a remittance
        self.denied_claims: dict[str, int] = defaultdict(int)  # payer -> claims with a matched denial
        self.denied_cents: dict[str, int] = defaultdict(int)
        self.cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.carc: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.rule: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.preventable = self.denials = self.denied_total = self.denied_matched = 0
        self.owed = self.paid = self.balance = self.recent = 0
        self.aging = Aging(as_of, undated=False)
        self.to_work: list[dict] = []
        # trends: per (payer, month of service / of payment) [claims, denied claims]; per (category, month) cents
        self.counts = {"dos": defaultdict(lambda: [0, 0]), "paid": defaultdict(lambda: [0, 0])}
        self.trend_cat = {"dos": defaultdict(int), "paid": defaultdict(int)}

    def add(self, c, denials: list[Denial]) -> None:
        """One reconciled claim (None for remits matching no claim) with its group's denials."""
        if c is not None:
            self._claim(c, bool(denials))
        matched_payers = set()
        for d in denials:
            payer = d.payer or UNKNOWN
            if d.matched:
                matched_payers.add(payer)
            self.denied_cents[payer] += d.amount
            for acc, key in ((self.cat, d.category), (self.carc, f"{d.group}-{d.carc}" if d.carc else "(none)")):
                acc[key][0] += 1
                acc[key][1] += d.amount
            for r in d.preventable_by:
                self.rule[r][0] += 1
                self.rule[r][1] += d.amount
            self.preventable += d.amount if d.preventable_by else 0
            self.denials += 1
            self.denied_total += d.amount
            months = {"dos": (d.service_date or (c.service_date if c else None) or "")[:7],
                      "paid": ((c.last_payment_date or "")[:7] if c else "")}
            for key, m in months.items():
                if m:
                    self.trend_cat[key][(d.category, m)] += d.amount
        for payer in matched_payers:
            self.denied_claims[payer] += 1
        self.denied_matched += bool(matched_payers)

    def _claim(self, c, denied: bool) -> None:
        self.claims += 1
        bal = open_balance(c)
        self.balance += bal
        if bal:
            self.aging.add(c.service_date, bal)
            self.to_work.append(_to_work_row(c, bal))
            if len(self.to_work) >= 4 * self.top:
                self.to_work = heapq.nsmallest(self.top, self.to_work, key=_work_order)
        if c.service_date and self.since < c.service_date <= self.as_of.isoformat():
            self.recent += c.billed or 0
        if not c.payments:
            return
        payer = c.payer or UNKNOWN
        self.adjudicated[payer] += 1
        self.owed += (c.billed or 0) - (c.adjustments - c.denied) - c.patient_responsibility
        self.paid += c.paid
        for key, m in (("dos", (c.service_date or "")[:7]), ("paid", (c.last_payment_date or "")[:7])):
            if m:
                n = self.counts[key][(payer, m)]
                n[0] += 1
                n[1] += denied

    def trends(self) -> dict[str, dict]:
        shown = {p for p, _ in sorted(self.adjudicated.items(), key=lambda kv: (-kv[1], kv[0]))[:TREND_PAYERS]}
        out = {}
        for key in ("dos", "paid"):
            counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
            for (payer, m), (n, k) in self.counts[key].items():
                acc = counts[(payer if payer in shown else "other payers", m)]
                acc[0] += n
                acc[1] += k
            cat = self.trend_cat[key]
            months = sorted({m for _, m in counts} | {m for _, m in cat})
            payers = sorted({p for p, _ in counts}, key=lambda p: (p == "other payers", p))
            rate = {p: [counts[(p, m)][1] / counts[(p, m)][0] if (p, m) in counts else None for m in months]
                    for p in payers}
            cats = sorted({k for k, _ in cat}, key=lambda k: -sum(v for (kk, _), v in cat.items() if kk == k))
            out[key] = {"months": months, "payer_rate": rate,
                        "category": {k: [_d(cat.get((k, m), 0)) for m in months] for k in cats}}
        return out


def _groups_with_denials(store: Store, tables: CodeTables, as_of: date | None, rec: Reconciliation | None,
                         denials: list[Denial] | None):
    """(as_of, iterable of (claim or None, its group's denials)): streamed from the store, or from the
    caller's reconciliation (and denials)."""
    if rec is None:
        stream = reconcile_stream(store, as_of, tables)
        return stream.as_of, ((g.claim, ds) for g, ds in iter_denials(store, stream.iter_groups(), tables))
    if denials is None:
        return rec.as_of, ((g.claim, ds) for g, ds in iter_denials(store, rec.iter_groups(), tables))
    by_pcn: dict[str, list[Denial]] = defaultdict(list)
    for d in denials:
        by_pcn[d.patient_control_number].append(d)
    return rec.as_of, ((g.claim, by_pcn.pop(g.patient_control_number, [])) for g in rec.iter_groups())


def report_data(store: Store, as_of: date | None = None, tables: CodeTables | None = None,
                top: int = 10, rec: Reconciliation | None = None, denials: list[Denial] | None = None,
                acks: Iterable[tuple[str, str, str]] | None = None) -> ReportData:
    """The report's figures, in one pass over the store's claim groups; `rec` and `denials` when the caller
    already has them (as of `as_of`); `acks`: (pcn, date, STC01-1) rows of payers' 277CAs, read from the
    store when None."""
    tables = tables or load_tables()
    as_of, pairs = _groups_with_denials(store, tables, as_of, rec, denials)
    f = _Figures(as_of, CLAIMS_TO_WORK)
    for claim, found in pairs:
        f.add(claim, found)
    by_payer = []
    for p in sorted(set(f.adjudicated) | set(f.denied_cents)):
        n, k = f.adjudicated.get(p, 0), f.denied_claims.get(p, 0)
        by_payer.append({"payer": p, "claims": n, "denied_claims": k,
                         "denial_rate": round(k / n, 4) if n else None, "denied_dollars": _d(f.denied_cents[p])})

    def rows(acc, name):
        out = [{name: k, "count": v[0], "dollars": _d(v[1])} for k, v in acc.items()]
        return sorted(out, key=lambda r: (-r["dollars"], r[name]))

    top_carcs = rows(f.carc, "carc")[:top]
    for r in top_carcs:
        info = tables.carc.get(r["carc"].split("-", 1)[-1])
        r["description"] = info.description if info else ""
    denied_dollars = _d(f.denied_total)
    kpis, missing = _kpis(store, f, denied_dollars, store.report_ack_events() if acks is None else acks)
    f.to_work.sort(key=_work_order)
    aging = [{"bucket": b, "claims": v["claims"], "balance": _d(v["balance"])} for b, v in f.aging.table().items()]
    data = ReportData(as_of, kpis, by_payer, rows(f.cat, "category"), top_carcs, rows(f.rule, "rule"),
                      aging, f.trends(), f.to_work[:CLAIMS_TO_WORK], f.denials, denied_dollars, missing)
    if not f.adjudicated:
        data.missing["remits"] = ("No 835 remittance matches a claim in the store: ingest the payers' 835s "
                                  "(`edi-pipeline ingest FILE.835 --db DB`, or drop them in the batch inbox).")
    if not f.claims:
        data.missing["claims"] = ("No claim in the store: run `edi-pipeline batch` on the 837P files, or "
                                  "`edi-pipeline ingest FILE.837 --db DB`.")
    return data


def _kpis(store: Store, f: _Figures, denied_dollars: Decimal, acks) -> tuple[list[Kpi], dict[str, str]]:
    missing = {}
    scrubbed, changed = store.report_scrub_counts()
    clean = Kpi("Clean-claim rate", _pct(scrubbed - changed, scrubbed),
                f"{scrubbed - changed:,} of {scrubbed:,} scrubbed claims sent without change or hold")
    if not scrubbed:
        clean.detail = "No claim went through the scrubber: run `edi-pipeline batch` or `scrub --db DB`."
    accepted, acked = first_pass_acceptance(acks)
    first = Kpi("First-pass acceptance", _pct(accepted, acked),
                f"{accepted:,} of {acked:,} claims accepted (277CA A1/A2) on their first answer")
    if not acked:
        first.detail = missing["acks"] = (
            "No payer 277CA in the store: ingest the clearinghouse's 277CA files (`edi-pipeline ingest "
            "FILE.277 --db DB`, or the batch inbox) to count claims accepted on first submission.")
    adjudicated = sum(f.adjudicated.values())
    denial = Kpi("Denial rate", _pct(f.denied_matched, adjudicated),
                 f"{f.denied_matched:,} of {adjudicated:,} adjudicated claims; ${denied_dollars:,.2f} denied")
    ncr = Kpi("Net collection rate", f"{f.paid / f.owed:.1%}" if f.owed > 0 else None,
              f"${_d(f.paid):,.2f} paid of ${_d(f.owed):,.2f} payers owed (billed less contractual "
              "adjustments and patient share)")
    days = Kpi("Days in A/R", f"{f.balance / (f.recent / DAYS_IN_AR_WINDOW):.0f}" if f.recent else None,
               f"${_d(f.balance):,.2f} open / average daily charges of the last {DAYS_IN_AR_WINDOW} days")
    if not f.recent:
        days.detail = (f"No charge with a date of service in the {DAYS_IN_AR_WINDOW} days before the as-of "
                       "date: pass `--as-of` near the claims' dates.")
    prev = Kpi("Preventable by rule", f"${_d(f.preventable):,.2f}" if f.denials else None,
               "denied dollars a scrubber rule would have caught (denial back-links)")
    if not f.denials:
        prev.detail = "No denial in the store's 835s."
    if not adjudicated:
        for k in (denial, ncr):
            k.detail = "No adjudicated claim: ingest the payers' 835s."
    return [clean, first, denial, ncr, days, prev], missing


# --- SVG charts ---------------------------------------------------------------------------------------

def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    step = 10 ** (len(str(int(v))) - 1) if v >= 1 else 0.1
    for m in (1, 1.2, 1.6, 2, 2.4, 4, 5, 6, 8, 10):  # a quarter of each is a round tick
        if v <= m * step:
            return m * step
    return 10 * step


def _money(v: float) -> str:
    return f"${v:,.0f}" if v == int(v) else f"${v:,.2f}"


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def _label(s: str, n: int = 28) -> str:
    return s if len(s) <= n else s[:n - 1] + "…"


def hbar_chart(title: str, labels: list[str], values: list[Decimal], money: bool = True) -> str:
    """Horizontal bars: one row per label (readable with many payers, rules or CARCs); dollars, or percents."""
    fmt = _money if money else (lambda v: f"{v:,.1f}".removesuffix(".0") + "%")
    vmax = _nice_max(float(max(values)))
    row, left, width, right = 26, 210, 470, 90
    height = 40 + row * len(labels) + 30
    parts = [f'<text x="10" y="20" class="t">{_esc(title)}</text>']
    for k in range(5):
        x = left + width * k / 4
        parts.append(f'<line x1="{x:.1f}" y1="32" x2="{x:.1f}" y2="{height - 28}" class="g"/>'
                     f'<text x="{x:.1f}" y="{height - 12}" class="a" text-anchor="middle">{fmt(vmax * k / 4)}</text>')
    for i, (lab, v) in enumerate(zip(labels, values)):
        y = 36 + row * i
        w = width * float(v) / vmax
        parts.append(f'<text x="{left - 6}" y="{y + 15}" class="l" text-anchor="end"><title>{_esc(lab)}</title>'
                     f'{_esc(_label(lab))}</text><rect class="mark" x="{left}" y="{y + 2}" width="{w:.1f}" '
                     f'height="{row - 8}" fill="{PALETTE[0]}"><title>{_esc(lab)}: {fmt(float(v))}</title></rect>'
                     f'<text x="{left + w + 4:.1f}" y="{y + 15}" class="a">{fmt(float(v))}</text>')
    return _svg(width + left + right, height, parts)


def _svg(w: float, h: float, parts: list[str]) -> str:
    return (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0f} {h:.0f}" '
            f'width="{w:.0f}" height="{h:.0f}" role="img">{"".join(parts)}</svg>')


def _legend(names: list[str], x: float, y: float) -> list[str]:
    return [f'<rect x="{x}" y="{y + 16 * i}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{x + 14}" y="{y + 9 + 16 * i}" class="l"><title>{_esc(n)}</title>{_esc(_label(n, 24))}</text>'
            for i, n in enumerate(names)]


def _month_axis(months: list[str], left: float, width: float, bottom: float) -> tuple[list[str], callable]:
    step = width / max(len(months), 1)
    every = max(1, len(months) // 12)
    parts = [f'<text x="{left + step * (i + .5):.1f}" y="{bottom + 16}" class="a" text-anchor="middle">{m}</text>'
             for i, m in enumerate(months) if i % every == 0]
    return parts, lambda i: left + step * (i + .5)


def _frame(title: str, left: int, top: int, width: int, height: int, label) -> list[str]:
    """A monthly chart's title and its five horizontal gridlines, `label(k)` naming gridline k (0-4)."""
    parts = [f'<text x="10" y="20" class="t">{_esc(title)}</text>']
    for k in range(5):
        y = top + height - height * k / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + width}" y2="{y:.1f}" class="g"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" class="a" text-anchor="end">{label(k)}</text>')
    return parts


def line_chart(title: str, months: list[str], series: dict[str, list[float | None]]) -> str:
    """Monthly rate lines (0-100 %), one per series, with a legend on the right."""
    left, top, width, height = 60, 34, 560, 220
    vmax = _nice_max(max((v for s in series.values() for v in s if v is not None), default=0) * 100) / 100
    parts = _frame(title, left, top, width, height, lambda k: f"{vmax * k / 4:.0%}")
    axis, xof = _month_axis(months, left, width, top + height)
    parts += axis
    for i, (name, values) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        pts = [(xof(j), top + height - height * v / vmax) for j, v in enumerate(values) if v is not None]
        if len(pts) > 1:
            parts.append(f'<polyline class="mark" fill="none" stroke="{color}" stroke-width="2" points="'
                         + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
        parts += [f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{_esc(name)}'
                  f'</title></circle>' for x, y in pts]
    parts += _legend(list(series), left + width + 16, top)
    return _svg(left + width + LEGEND_WIDTH, top + height + 30, parts)


def stacked_chart(title: str, months: list[str], series: dict[str, list[Decimal]]) -> str:
    """Monthly stacked bars of dollars, one colour per series."""
    left, top, width, height = 80, 34, 540, 220
    totals = [sum((s[j] for s in series.values()), Decimal(0)) for j in range(len(months))]
    vmax = _nice_max(float(max(totals, default=0)))
    parts = _frame(title, left, top, width, height, lambda k: _money(vmax * k / 4))
    axis, xof = _month_axis(months, left, width, top + height)
    parts += axis
    bw = min(max(width / max(len(months), 1) * .7, 1), 60)
    base = [0.0] * len(months)
    for i, (name, values) in enumerate(series.items()):
        for j, v in enumerate(values):
            if v:
                h = height * float(v) / vmax
                y = top + height - base[j] - h
                parts.append(f'<rect class="mark" x="{xof(j) - bw / 2:.1f}" y="{y:.1f}" width="{bw:.1f}" '
                             f'height="{h:.1f}" fill="{PALETTE[i % len(PALETTE)]}"><title>{_esc(name)} '
                             f'{months[j]}: {_money(float(v))}</title></rect>')
                base[j] += h
    parts += _legend(list(series), left + width + 16, top)
    return _svg(left + width + LEGEND_WIDTH, top + height + 30, parts)


# --- page ------------------------------------------------------------------------------------------------

def _table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    head = "".join(f"<th>{_esc(label)}</th>" for _, label in cols)
    body = []
    for r in rows:
        cells = []
        for key, _ in cols:
            v = r.get(key)
            if isinstance(v, float) and key.endswith("rate"):
                v = f"{v:.1%}"
            elif isinstance(v, Decimal):
                v = f"${v:,.2f}"
            elif isinstance(v, int) and not key.endswith("days"):
                v = f"{v:,}"
            cells.append(f"<td>{_esc('' if v is None else v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _missing(text: str) -> str:
    return f"<p class='missing'>{_esc(text)}</p>"


def _section(title: str, body: str) -> str:
    return f"<section><h2>{_esc(title)}</h2>{body}</section>"


def render_html(data: ReportData) -> str:
    no_remits = data.missing.get("remits") or data.missing.get("claims")
    no_denials = no_remits or "No denial in the store's 835s: nothing to chart."
    kpis = "".join(f"<div class='kpi'><div class='kn'>{_esc(k.name)}</div><div class='kv'>"
                   f"{_esc(k.value) if k.value is not None else 'n/a'}</div><div class='kd'>{_esc(k.detail)}</div>"
                   "</div>" for k in data.kpis)
    sections = [f"<section class='kpis'>{kpis}</section>"]
    rated = [r for r in data.by_payer if r["claims"]]
    sections.append(_section("Denials by payer", (
        hbar_chart("Denied dollars by payer", [r["payer"] for r in data.by_payer],
                   [r["denied_dollars"] for r in data.by_payer])
        + hbar_chart("Denial rate by payer (% of adjudicated claims)", [r["payer"] for r in rated],
                     [Decimal(str(round(r["denial_rate"] * 100, 1))) for r in rated], money=False)
        + _table(data.by_payer, [("payer", "Payer"), ("claims", "Adjudicated claims"),
                                 ("denied_claims", "Denied claims"), ("denial_rate", "Denial rate"),
                                 ("denied_dollars", "Denied $")])
        + "<p class='note'>Denial rate = claims with a denied claim or line / claims with a remittance "
          "(reversed payments left out).</p>") if data.denials and rated else _missing(no_denials)))
    for key, basis in (("dos", "date of service"), ("paid", "payment date")):
        t = data.trends[key]
        body = ""
        if t["payer_rate"] and any(v is not None for s in t["payer_rate"].values() for v in s):
            body += line_chart(f"Denial rate by payer, by month of {basis}", t["months"], t["payer_rate"])
        if t["category"]:
            body += stacked_chart(f"Denied dollars by CARC category, by month of {basis}", t["months"],
                                  t["category"])
        sections.append(_section(f"Monthly trends by {basis}", body or _missing(no_denials)))
    for title, rows_, key, cols in (
            ("Denied dollars by category", data.by_category, "category",
             [("category", "Category"), ("count", "Denials"), ("dollars", "$")]),
            ("Top CARCs", data.top_carcs, "carc",
             [("carc", "CARC"), ("description", "Meaning"), ("count", "Denials"), ("dollars", "$")]),
            ("Preventable dollars by rule", data.by_rule, "rule",
             [("rule", "Rule"), ("count", "Denials"), ("dollars", "$")])):
        if rows_:
            body = (hbar_chart(title, [r[key] for r in rows_], [r["dollars"] for r in rows_])
                    + _table(rows_, cols))
            if key == "rule":
                body += "<p class='note'>A denial that several rules would have caught counts under each.</p>"
        elif key == "rule" and data.denials:
            body = _missing("No denial links back to a scrubber rule (codes' denial back-links table).")
        else:
            body = _missing(no_denials)
        sections.append(_section(title, body))
    if any(r["claims"] for r in data.aging):
        sections.append(_section(f"A/R aging as of {data.as_of.isoformat()}", hbar_chart(
            "Open balance by days since service", [r["bucket"] + " days" for r in data.aging],
            [r["balance"] for r in data.aging])
            + _table(data.aging, [("bucket", "Days"), ("claims", "Claims"), ("balance", "Open $")])
            + "<p class='note'>Every unpaid balance: no remit yet, denied, partly paid, reversed.</p>"))
    else:
        sections.append(_section("A/R aging", _missing(data.missing.get("claims") or
                                                       "No open balance: every claim is paid.")))
    if data.worklist:
        sections.append(_section("Claims to work (top by dollars at risk)", _table(data.worklist, [
            ("patient_control_number", "Claim (PCN)"), ("payer", "Payer"), ("service_date", "Service"),
            ("status", "Status"), ("age_days", "Age (days)"), ("at_risk", "At risk"),
            ("next_action", "Next action")])))
    else:
        sections.append(_section("Claims to work", _missing(data.missing.get("claims") or
                                                            "No unpaid balance to work.")))
    if "acks" in data.missing:
        sections.append(_section("First-pass acceptance", _missing(data.missing["acks"])))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Practice health report ({data.as_of.isoformat()})</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: .25em .6em; text-align: left; }}
th {{ background: #f3f3f3; }} .note {{ color: #666; font-size: .9em; }}
.missing {{ color: #8a5a00; background: #fff8e5; border-left: 4px solid #e0a800; padding: .6em 1em; }}
.kpis {{ display: grid; grid-template-columns: repeat(3, 1fr); gap: .8em; }}
.kpi {{ border: 1px solid #ddd; border-radius: 6px; padding: .7em 1em; }}
.kn {{ color: #555; font-size: .9em; }} .kv {{ font-size: 1.8em; font-weight: 600; }}
.kd {{ color: #666; font-size: .8em; }}
svg.chart {{ display: block; margin: .5em 0; max-width: 100%; height: auto; }}
svg .t {{ font: 600 14px system-ui, sans-serif; }} svg .l {{ font: 12px system-ui, sans-serif; }}
svg .a {{ font: 11px system-ui, sans-serif; fill: #555; }} svg .g {{ stroke: #e5e5e5; }}
</style></head><body>
<h1>Practice health report</h1>
<p>As of {data.as_of.isoformat()}: {data.denials:,} denied claims/lines, ${data.denied_dollars:,.2f} denied.</p>
{''.join(sections)}
</body></html>
"""


def write_report(store: Store, output: str | os.PathLike, as_of: date | None = None,
                 tables: CodeTables | None = None, rec: Reconciliation | None = None,
                 denials: list[Denial] | None = None) -> ReportData:
    """Write the report atomically to `output` and return the data it shows."""
    data = report_data(store, as_of, tables, rec=rec, denials=denials)
    page = render_html(data)
    with atomic_output(output) as out:
        out.write(page)
    return data


__all__ = ["Kpi", "ReportData", "claims_to_work", "first_pass_acceptance", "open_balance", "report_data",
           "render_html", "write_report"]
