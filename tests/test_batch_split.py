"""`batch --workers N` splits one large 837P across its workers (pipeline.split: each set's TR3 walk made in
the pool, read ahead of the scrub): the same outputs and store rows as `--workers 1`, the same Validation
and 999s as the one-process pass, with sets rejected by TR3 in the middle and late, a set the reader
faults (wrong SE01) and 999 groups spanning several sets."""

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
import re
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from conftest import ROOT
from test_batch_workers import _run

import edi_pipeline.pipeline.one_pass as one_pass
from edi_pipeline.pipeline import split
from edi_pipeline.runners import batch
from edi_pipeline.store.store import Store
from edi_pipeline.tr3.compiled import SetValidation, walk_set
from edi_pipeline.x12.envelope import EnvelopeReader

SETS = 12  # 2 interchanges of 6 sets, each interchange one functional group


def _mutated(tmp_path: Path) -> tuple[Path, Path]:
    """A generated 837P of SETS sets (and its 835): set 4 with a TR3 error (PER01 not a code), set 9 with
    a wrong SE01 (the envelope reader's), set 12 with a TR3 error in its last claim (DMG01)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import generate

    p837, p835, _ = generate.generate(SETS * 30, 13, tmp_path / "gen", claims_per_st=30, interchanges=2,
                                      trip_rate=0.2)
    text = p837.read_bytes()
    starts = [m.start() for m in re.finditer(rb"ST\*837\*", text)] + [len(text)]
    assert len(starts) == SETS + 1
    sets = [text[a:b] for a, b in zip(starts, starts[1:])]
    head = text[:starts[0]]
    sets[3] = sets[3].replace(b"PER*IC*", b"PER*Q9*", 1)
    se = re.search(rb"SE\*(\d+)\*", sets[8])
    sets[8] = sets[8][:se.start(1)] + str(int(se.group(1)) + 1).encode() + sets[8][se.end(1):]
    k = sets[11].rfind(b"DMG*D8*")
    sets[11] = sets[11][:k] + b"DMG*XX*" + sets[11][k + 7:]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "big.837").write_bytes(head + b"".join(sets))
    shutil.copyfile(p835, inbox / "big.835")
    return inbox / "big.837", inbox


@pytest.fixture
def handed(monkeypatch):
    """The sets handed to the pool (split.hand_out), counted; any file is split (no size threshold)."""
    count = []
    real = split.hand_out
    monkeypatch.setattr(split, "hand_out", lambda pool, args: count.append(args[3].control_number) or real(pool, args))
    monkeypatch.setattr(split, "SPLIT_BYTES", 0)
    return count


@pytest.fixture(scope="module")
def pool():
    with ProcessPoolExecutor(2, multiprocessing.get_context("spawn")) as p:
        yield p


def test_two_workers_split_one_file_and_give_every_output_and_row_of_one(tmp_path, monkeypatch, handed):
    monkeypatch.setenv("EDI_SCRUB_DATE", "2026-11-27")
    path, inbox = _mutated(tmp_path)
    passes = []
    real = one_pass.validate_and_scrub
    monkeypatch.setattr(one_pass, "validate_and_scrub", lambda *a, **k: passes.append(r := real(*a, **k)) or r)
    one = _run(inbox, tmp_path / "one", 1)
    assert handed == [] and passes[0] is not None
    two = _run(inbox, tmp_path / "two", 2)
    # every set walked in the pool, in file order
    assert handed == [m.decode() for m in re.findall(rb"ST\*837\*(\d+)", path.read_bytes())] and len(handed) == SETS
    assert passes[1] is not None  # the one read stood: every set's verdict as read was the final one
    assert one[0] == 1
    acks = b"".join(v for k, v in one[1].items() if k.endswith(".999"))
    assert acks.count(b"IK5*R") == 3 and acks.count(b"IK5*A") == SETS - 3  # sets 4, 9 and 12 rejected
    assert acks.count(b"AK9*R") + acks.count(b"AK9*P") == 2  # each group's 999 spans its sets
    assert one[2]["claims"] and one[2]["findings"]
    assert two[1].keys() == one[1].keys()
    for k in one[1]:
        assert two[1][k] == one[1][k], k
    assert two[2] == one[2]


def _one_read(path: Path, out: Path, pool=None):
    store = Store(":memory:")
    try:
        with split.splitting(pool):
            one = one_pass.validate_and_scrub(path, path.name, out / "o", out / "r", store, "f" * 64,
                                              path.read_bytes())
        return one, *((out / n).read_bytes() if (out / n).exists() else None for n in ("o", "r"))
    finally:
        store.close()


def _masked(text: str) -> str:
    return re.sub(r"^(ISA(?:\*[^*]*){8}|GS(?:\*[^*]*){3})\*[^*]*\*[^*~]*", r"\1*T*T", text, flags=re.M)


def test_the_split_read_gives_the_one_process_validation_and_scrub(tmp_path, handed, pool):
    path, _ = _mutated(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    alone, out1, rej1 = _one_read(path, tmp_path / "a")
    split_, out2, rej2 = _one_read(path, tmp_path / "b", pool)
    assert len(handed) == SETS and alone is not None and split_ is not None
    v1, v2 = alone.validation, split_.validation
    assert v2.to_dict() == v1.to_dict() and v2.issues == v1.issues
    assert v2.rejected_sets() == v1.rejected_sets() and len(v1.rejected_sets()) == 3
    assert [_masked(a.numbered(7)) for a in v2.acks] == [_masked(a.numbered(7)) for a in v1.acks]
    assert (out2, rej2) == (out1, rej1) and rej1
    assert split_.claim_acks is not None and len(split_.claim_acks.write(tmp_path / "b", "x", iter(range(1, 9)))) == \
        len(alone.claim_acks.write(tmp_path / "a", "x", iter(range(1, 9))))


class _Counting:
    """A pool that walks a set when its result is asked for (pickled there and back, as a worker's is),
    counting the walks handed out and not yet taken."""

    def __init__(self):
        self.waiting = self.most = 0

    def submit(self, fn, *args):
        self.waiting += 1
        self.most = max(self.most, self.waiting)
        pool = self

        class Result:
            def result(self):
                pool.waiting -= 1
                return pickle.loads(pickle.dumps(fn(*pickle.loads(pickle.dumps(args)))))
        return Result()


@pytest.mark.parametrize("segments, most", [(None, split.AHEAD + 1), (1, 2)])
def test_the_read_ahead_holds_a_bounded_number_of_sets(tmp_path, monkeypatch, segments, most):
    """At most AHEAD sets wait in the queue (and one more is handed out before the first is given), or
    a single one when they hold over AHEAD_SEGMENTS segments."""
    if segments is not None:
        monkeypatch.setattr(split, "AHEAD_SEGMENTS", segments)
    path, _ = _mutated(tmp_path)
    fake = _Counting()
    with EnvelopeReader(path, path.name) as env:
        ahead = split.ReadAhead(env, fake, path.name, datetime.now(timezone.utc))
        seen = 0
        for item in ahead:
            mark, walked = ahead.taken(item)
            assert mark <= len(env.issues)
            seen += walked is not None
    assert seen == SETS and fake.most == most


_SMALL: dict[str, bytes] = {}
# (what is changed in the set, its replacement): TR3 errors, a balancing error, a reader error, a truncation
_MUTATIONS = [(b"PER*IC*", b"PER*Q9*"), (b"DMG*D8*", b"DMG*XX*"), (b"N4*", b"N9*"), (b"CLM*", b"CLM**"),
              (b"SE*", b"SE*1"), (b"SE*", b"")]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(_MUTATIONS), st.booleans()), max_size=3))
def test_split_reads_of_mutated_files_equal_the_one_process_read(tmp_path_factory, monkeypatch, changes):
    """Any mix of rejected, faulty and truncated sets: the split read gives what the one-process read
    gives (or both give way to two reads)."""
    if not _SMALL:
        sys.path.insert(0, str(ROOT / "scripts"))
        import generate

        p837, _, _ = generate.generate(24, 5, tmp_path_factory.mktemp("small"), claims_per_st=4, interchanges=2)
        _SMALL["text"] = p837.read_bytes()
    text = _SMALL["text"]
    starts = [m.start() for m in re.finditer(rb"ST\*837\*", text)] + [len(text)]
    sets = [text[a:b] for a, b in zip(starts, starts[1:])]
    for k, (old, new), last in changes:
        at = sets[k].rfind(old) if last else sets[k].find(old)
        sets[k] = sets[k][:at] + new + sets[k][at + len(old):]
    tmp = tmp_path_factory.mktemp("case")
    path = tmp / "small.837"
    path.write_bytes(text[:starts[0]] + b"".join(sets))
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    monkeypatch.setattr(split, "SPLIT_BYTES", 0)
    alone, out1, rej1 = _one_read(path, tmp / "a")
    split_, out2, rej2 = _one_read(path, tmp / "b", _Counting())
    assert (alone is None) == (split_ is None) and (out2, rej2) == (out1, rej1)
    if alone is not None:
        assert split_.validation.to_dict() == alone.validation.to_dict()
        assert [_masked(a.numbered(7)) for a in split_.validation.acks] == \
            [_masked(a.numbered(7)) for a in alone.validation.acks]


def _held_until(flag: str) -> None:
    """A job keeping its worker busy until the file `flag` exists."""
    while not Path(flag).exists():
        time.sleep(0.01)


def test_walks_no_worker_has_started_are_made_here_with_the_same_results(tmp_path, handed):
    """split.Walkers: the pool's one worker busy, the parent walks every set itself (the worker skips
    them once free) and the read is the one-process read, as it is once the worker is free."""
    path, _ = _mutated(tmp_path)
    for d in "abc":
        (tmp_path / d).mkdir()
    alone = _one_read(path, tmp_path / "a")
    context = multiprocessing.get_context("spawn")
    table = split.walk_table(context)
    with ProcessPoolExecutor(1, context, initializer=split.share, initargs=(table,)) as executor:
        busy = executor.submit(_held_until, str(tmp_path / "free"))
        walkers = split.Walkers(executor, table)
        here = _one_read(path, tmp_path / "b", walkers)
        assert not busy.done() and [table[k] for k in range(1, SETS + 1)] == [0] * SETS  # all taken here
        (tmp_path / "free").touch()
        busy.result()
        there = _one_read(path, tmp_path / "c", walkers)  # the worker free: it takes walks as they come
    assert len(handed) == 2 * SETS
    for split_ in here, there:
        assert split_[1:] == alone[1:] and split_[0].validation.to_dict() == alone[0].validation.to_dict()
        assert [_masked(a.numbered(7)) for a in split_[0].validation.acks] == \
            [_masked(a.numbered(7)) for a in alone[0].validation.acks]


def test_a_walk_made_in_a_worker_is_the_walk_made_here(tmp_path, pool):
    """walk_set's result, pickled from a worker, places the same issues and 999s as the walk made in place."""
    path, _ = _mutated(tmp_path)
    now = datetime.now(timezone.utc)
    here, there = SetValidation(path.name, now), SetValidation(path.name, now)
    isa = gs = None
    with EnvelopeReader(path, path.name) as env:
        for item in env:
            here.feed(item)
            if getattr(item, "tag", None) in ("ISA", "GS"):
                isa, gs = (item, gs) if item.tag == "ISA" else (isa, item)
            there.feed(item, pool.submit(walk_set, path.name, isa, gs, item, now).result()
                       if not hasattr(item, "tag") else None)
    a, b = here.result(), there.result()
    assert a.issues == b.issues and len(a.issues) >= 3
    assert [g.numbered(1) for g in a.groups] == [g.numbered(1) for g in b.groups]


def test_only_a_large_837p_beside_fewer_837ps_than_workers_is_split(tmp_path, monkeypatch):
    monkeypatch.setattr(split, "SPLIT_BYTES", 100)
    scans = {Path("a.837"): batch.FileScan("837P", []), Path("b.835"): batch.FileScan("835", []),
             Path("c.837"): batch.FileScan("837P+835", []), Path("d"): None}
    screens = {p: batch.Screened("", scans[p], None, (size, 0, 0)) for p, size in
               ((Path("a.837"), 100), (Path("b.835"), 1000), (Path("c.837"), 99))}
    screens[Path("d")] = None
    wave = list(scans)
    assert batch._to_split(wave, {}, scans, screens, 3) == [Path("a.837")]  # c.837 is too small
    assert batch._to_split(wave, {}, scans, screens, 2) == []  # two 837Ps keep two workers busy
    assert batch._to_split(wave, {Path("c.837"): None}, scans, screens, 2) == [Path("a.837")]
