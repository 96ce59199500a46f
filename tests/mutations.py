"""A hypothesis strategy of damaged fixture files: truncation, delimiter swaps, dropped and duplicated
segments, stray bytes and flipped bytes."""

from conftest import FIXTURES
from hypothesis import strategies as st

SEEDS = [(FIXTURES / n).read_bytes() for n in
         ("837p-clean.837", "pair-denials.835", "837p-crlf-bom.837", "pair-plb.835", "837p-multi-interchange.837")]


@st.composite
def mutated(draw, seeds: list[bytes] = SEEDS):
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "swap", "drop", "dup", "stray", "flip"]))
        segs = bytes(data).split(b"~")
        if op == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif op == "swap":
            a, b = draw(st.sampled_from([(b"*", b"~"), (b"~", b"*"), (b":", b"*"), (b"*", b"|"), (b"~", b"\n")]))
            data = bytearray(bytes(data).replace(a, b, draw(st.integers(1, 5))))
        elif op in ("drop", "dup") and len(segs) > 2:
            k = draw(st.integers(0, len(segs) - 1))
            segs = segs[:k] + segs[k + 1:] if op == "drop" else segs[:k] + [segs[k]] + segs[k:]
            data = bytearray(b"~".join(segs))
        elif op == "stray":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
    return bytes(data)
