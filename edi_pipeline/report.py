"""A self-contained HTML report (works offline): denials by payer, category, CARC and rule; A/R aging.

Charts are plotly figures; the plotly.js bundle is inlined once, so the page needs no network.
"""

from __future__ import annotations

import html
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .codes import CodeTables, load_tables
from .denials import Denial, find_denials
from .reconcile import AGING_BUCKETS, Reconciliation, reconcile
from .store import Store, from_cents
from .writer import atomic_output


@dataclass
class ReportData:
    as_of: date
    by_payer: list[dict]  # payer, claims (adjudicated), denied_claims, denial_rate, denied_dollars
    by_category: list[dict]  # category, count, dollars
    top_carcs: list[dict]  # carc, description, count, dollars
    by_rule: list[dict]  # rule, count, dollars
    aging: list[dict]  # bucket, claims, billed
    denials: int
    denied_dollars: Decimal


def _d(cents: int) -> Decimal:
    return from_cents(cents)


def report_data(store: Store, as_of: date | None = None, tables: CodeTables | None = None,
                top: int = 10, rec: Reconciliation | None = None,
                denials: list[Denial] | None = None) -> ReportData:
    """The report's figures; `rec` and `denials` when the caller already has them (as of `as_of`)."""
    tables = tables or load_tables()
    rec = rec or reconcile(store, as_of, tables)
    if denials is None:
        denials = find_denials(store, tables, rec)
    adjudicated: dict[str, set[str]] = defaultdict(set)
    for c in rec.claims:
        if c.payments:
            adjudicated[c.payer or "(unknown)"].add(c.patient_control_number)
    denied_claims: dict[str, set[str]] = defaultdict(set)
    denied_cents: dict[str, int] = defaultdict(int)
    cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    carc: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    rule: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for d in denials:
        payer = d.payer or "(unknown)"
        if d.matched:
            denied_claims[payer].add(d.patient_control_number)
        denied_cents[payer] += d.amount
        for acc, key in ((cat, d.category), (carc, f"{d.group}-{d.carc}" if d.carc else "(none)")):
            acc[key][0] += 1
            acc[key][1] += d.amount
        for r in d.preventable_by:
            rule[r][0] += 1
            rule[r][1] += d.amount
    payers = sorted(set(adjudicated) | set(denied_cents))
    by_payer = []
    for p in payers:
        n = len(adjudicated.get(p, ()))
        k = len(denied_claims.get(p, ()))
        by_payer.append({"payer": p, "claims": n, "denied_claims": k,
                         "denial_rate": round(k / n, 4) if n else None, "denied_dollars": _d(denied_cents[p])})

    def rows(acc, name):
        out = [{name: k, "count": v[0], "dollars": _d(v[1])} for k, v in acc.items()]
        return sorted(out, key=lambda r: (-r["dollars"], r[name]))

    top_carcs = rows(carc, "carc")[:top]
    for r in top_carcs:
        info = tables.carc.get(r["carc"].split("-", 1)[-1])
        r["description"] = info.description if info else ""
    aging = [{"bucket": b, "claims": rec.aging[b]["claims"], "billed": _d(rec.aging[b]["billed"])}
             for b in AGING_BUCKETS]
    return ReportData(rec.as_of, by_payer, rows(cat, "category"), top_carcs, rows(rule, "rule"), aging,
                      len(denials), _d(sum(d.amount for d in denials)))


def _table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    if not rows:
        return "<p class='empty'>None.</p>"
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in cols)
    body = []
    for r in rows:
        cells = []
        for key, _ in cols:
            v = r.get(key)
            if isinstance(v, float) and key.endswith("rate"):
                v = f"{v:.1%}"
            elif isinstance(v, Decimal):
                v = f"${v:,.2f}"
            cells.append(f"<td>{html.escape('' if v is None else str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(data: ReportData) -> str:
    import plotly.graph_objects as go

    def bar(x, y, title, ytitle, horizontal=False):
        if horizontal:
            fig = go.Figure(go.Bar(x=y, y=x, orientation="h"))
            fig.update_yaxes(autorange="reversed")
            fig.update_xaxes(title_text=ytitle)
        else:
            fig = go.Figure(go.Bar(x=x, y=y))
            fig.update_yaxes(title_text=ytitle)
        fig.update_layout(title_text=title, height=380, margin=dict(l=60, r=20, t=50, b=60),
                          template="plotly_white")
        return fig

    payer_fig = go.Figure()
    payer_fig.add_bar(name="Denied dollars", x=[r["payer"] for r in data.by_payer],
                      y=[r["denied_dollars"] for r in data.by_payer], yaxis="y")
    payer_fig.add_scatter(name="Denial rate", x=[r["payer"] for r in data.by_payer],
                          y=[r["denial_rate"] or 0 for r in data.by_payer], yaxis="y2", mode="markers",
                          marker=dict(size=12))
    payer_fig.update_layout(title_text="Denial rate and dollars by payer", height=380, template="plotly_white",
                            yaxis=dict(title_text="Denied $"),
                            yaxis2=dict(title_text="Denial rate", overlaying="y", side="right",
                                        tickformat=".0%", rangemode="tozero"),
                            margin=dict(l=60, r=60, t=50, b=60))
    figs = [
        ("Denials by payer", payer_fig, _table(data.by_payer, [
            ("payer", "Payer"), ("claims", "Adjudicated claims"), ("denied_claims", "Denied claims"),
            ("denial_rate", "Denial rate"), ("denied_dollars", "Denied $")])
         + "<p class='note'>Denial rate = claims with a denied claim or line / claims with a remittance "
           "(reversed payments left out).</p>"),
        ("Denied dollars by category",
         bar([r["category"] for r in data.by_category], [r["dollars"] for r in data.by_category],
             "Denied dollars by category", "$", horizontal=True),
         _table(data.by_category, [("category", "Category"), ("count", "Denials"), ("dollars", "$")])),
        ("Top CARCs",
         bar([r["carc"] for r in data.top_carcs], [r["dollars"] for r in data.top_carcs],
             "Top CARCs by denied dollars", "$"),
         _table(data.top_carcs, [("carc", "CARC"), ("description", "Meaning"), ("count", "Denials"),
                                 ("dollars", "$")])),
        ("Preventable dollars by rule",
         bar([r["rule"] for r in data.by_rule], [r["dollars"] for r in data.by_rule],
             "Denied dollars a scrubber rule would have prevented", "$", horizontal=True),
         _table(data.by_rule, [("rule", "Rule"), ("count", "Denials"), ("dollars", "$")])
         + "<p class='note'>A denial that several rules would have caught counts under each of them.</p>"),
        ("A/R aging (claims with no remit)",
         bar([r["bucket"] for r in data.aging], [r["billed"] for r in data.aging],
             f"A/R aging as of {data.as_of.isoformat()} (billed $, by days since service)", "$"),
         _table(data.aging, [("bucket", "Days"), ("claims", "Claims"), ("billed", "Billed $")])),
    ]
    sections = []
    for k, (title, fig, table) in enumerate(figs):
        div = fig.to_html(full_html=False, include_plotlyjs=(k == 0), include_mathjax=False,
                          config={"displaylogo": False, "responsive": True}, div_id=f"chart-{k}")
        sections.append(f"<section><h2>{html.escape(title)}</h2>{div}{table}</section>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Denials and A/R report ({data.as_of.isoformat()})</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: .25em .6em; text-align: left; }}
th {{ background: #f3f3f3; }} .note, .empty {{ color: #666; font-size: .9em; }}
</style></head><body>
<h1>Denials and A/R report</h1>
<p>As of {data.as_of.isoformat()}: {data.denials} denied claims/lines, ${data.denied_dollars:,.2f} denied.</p>
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


__all__ = ["ReportData", "report_data", "render_html", "write_report"]
