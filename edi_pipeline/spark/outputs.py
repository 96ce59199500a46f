"""One input file's X12 outputs from its claims' outcomes, laid out as `batch` lays them out.

OUT/outbound: the corrected 837P, each claim as the scrub sent it (unchanged claims byte-identical), none
when no claim is sent; OUT/rejects: the held claims and withheld sets as they came. Their text is made in
the executors from the file's bytes (`file_x12`: the envelopes, HL pruning and counts are the scrubber's
own, x12.writer.X12Writer and scrubber.rebuild), so the driver never reads an input; the driver publishes
each text whole (`publish`), under the input's own file name made safe, never a name from its content.
OUT/acks: its 999s and TA1s, written on the driver in file order (`write_file_acks`): their interchange
control numbers come from one counter kept in OUT/acks (validator.write_acks).
"""

from __future__ import annotations

import io
from pathlib import Path

from edi_pipeline.core.files import atomic_output
from edi_pipeline.core.paths import output_path, safe_name
from edi_pipeline.scrub.scrubber import rebuild
from edi_pipeline.tx.parse_837p import parse_837p
from edi_pipeline.tx.registry import Kind, kind_of, of_kind
from edi_pipeline.x12.writer import X12Writer
from edi_pipeline.x12.envelope import EnvelopeReader, EnvelopeSegment

HELD, WITHHELD = "held", "withheld"
OUTPUT_FOLDERS = ("outbound", "rejects")


def write_file_acks(name: str, out: Path, validation) -> None:
    """`name`'s 999s and TA1s under OUT/acks, from the validation its read made."""
    from edi_pipeline.validate.validator import write_acks

    (out / "acks").mkdir(parents=True, exist_ok=True)
    write_acks(validation, out / "acks", name)


def publish(out: Path, name: str, texts: dict[str, str]) -> None:
    """Write one input's outputs (folder -> X12 text, as file_x12 makes them) under OUT/<folder>/<name made
    safe>, each atomically."""
    for sub in OUTPUT_FOLDERS:
        (out / sub).mkdir(parents=True, exist_ok=True)
        if sub in texts:
            with atomic_output(output_path(out / sub, safe_name(name))) as fh:
                fh.write(texts[sub])


def file_x12(data: bytes, name: str, outcomes: dict[int, dict]) -> dict[str, str]:
    """The X12 text of `name`'s corrected 837P ("outbound") and held claims ("rejects"), each only when
    it has a set; `outcomes` maps each claim's file segment index to its outcome (status, x12)."""
    texts: dict[str, io.StringIO] = {}
    sent = sum(o["status"] == "sent" for o in outcomes.values())

    def opener(sub: str):
        return lambda: texts.setdefault(sub, io.StringIO())

    main, rejects = X12Writer(lazy=True, open_file=opener("outbound")), X12Writer(lazy=True, open_file=opener("rejects"))
    with EnvelopeReader(data, name) as env:
        for item in env:
            if isinstance(item, EnvelopeSegment):
                main.envelope(item)
                rejects.envelope(item)
                continue
            tx = item
            if kind_of(tx) is not Kind.CLAIM_837P:
                if tx.set_id == of_kind(Kind.CLAIM_837P).st01:  # not an 837P: held unchanged, as scrub_file holds it
                    rejects.transaction(tx, tx.segments)
                continue
            claims = list(parse_837p(tx))
            got = [outcomes.get(c.source.segment_index) for c in claims]
            if any(o is not None and o["status"] == WITHHELD for o in got):
                rejects.transaction(tx, tx.segments)
                continue
            end = tx.delimiters.segment + tx.delimiters.suffix
            main_replace: dict[int, object] = {}
            rej_replace: dict[int, object] = {}
            held = False
            for c, o in zip(claims, got):
                if o is not None and o["status"] == "sent":
                    rej_replace[c.start] = None
                    segs = o["x12"].split(end)[:-1]
                    if segs != c.raw:
                        main_replace[c.start] = segs
                elif o is not None and o["status"] == HELD:
                    held = True
                    main_replace[c.start] = None
                else:  # emptied: every line removed
                    main_replace[c.start] = rej_replace[c.start] = None
            segs = rebuild(tx, claims, main_replace)
            if segs is not None and sent:
                main.transaction(tx, segs)
            if held:
                rejects.transaction(tx, rebuild(tx, claims, rej_replace))
    return {sub: texts[sub].getvalue() for sub in OUTPUT_FOLDERS if sub in texts}
