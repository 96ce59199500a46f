"""Tests for the one atomic writer (edi_pipeline.core.files): every way a finished file is put in its
place fsyncs the file and then the folder that holds it, so the rename survives a crash."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edi_pipeline.core import files
from edi_pipeline.runners import batch


def _write_text(target):
    with files.atomic_output(target) as fh:
        fh.write("ISA~")


def _write_bytes(target):
    with files.atomic_binary(target) as fh:
        fh.write(b"\x80\x04")


def _copy(target):
    src = target.parent.parent / "src"
    src.write_bytes(b"ISA~")
    files.atomic_copy(src, target)


def _replace(target):
    src = target.parent.parent / "done"
    src.write_text("ISA~")
    files.replace_file(src, target)


def _publish(target):
    stage = target.parent.parent / "stage"
    (stage / target.parent.name).mkdir(parents=True)
    (stage / target.parent.name / target.name).write_text("ISA~")
    batch.publish(stage, target.parent.parent)


@pytest.mark.parametrize("write", [_write_text, _write_bytes, _copy, _replace, _publish], ids=lambda f: f.__name__)
def test_the_target_folder_is_fsynced_after_the_rename(write, tmp_path, monkeypatch):
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "a.txt"
    synced = []
    real = os.fsync

    def fsync(fd):
        st = os.fstat(fd)
        synced.append(("dir" if stat.S_ISDIR(st.st_mode) else "file", st.st_ino, target.exists()))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write(target)
    assert target.exists()
    dirs = [(ino, seen) for kind, ino, seen in synced if kind == "dir"]
    assert (os.stat(folder).st_ino, True) in dirs  # the folder itself, once the file is in it


def test_tr3_compiled_cache_is_written_by_the_atomic_writer(tmp_path, monkeypatch):
    from edi_pipeline.tr3 import compiled

    used = []
    real = files.atomic_binary

    def spy(path, mode=None):
        used.append(path)
        return real(path, mode)

    monkeypatch.setattr(compiled, "atomic_binary", spy)
    monkeypatch.setattr(compiled, "_cache_path", lambda name: tmp_path / "cache" / f"{name}.pickle")
    monkeypatch.delenv("EDI_TR3C_NO_CACHE", raising=False)
    monkeypatch.setattr(compiled, "_COMPILED", {})
    compiled.compiled_map("837.5010.X222.A1.xml")
    assert used and used[0].exists()


def an_input_folder(tmp_path: Path) -> Path:
    """A folder as an upload tool leaves it: a finished file, one still being written, a hidden one, a
    folder, a link and a FIFO."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.837").write_text("ISA")
    (folder / "b.837.part").write_text("IS")
    (folder / ".c.837").write_text("ISA")
    (folder / "sub").mkdir()
    (folder / "link.837").symlink_to(folder / "a.837")
    os.mkfifo(folder / "pipe.837")
    return folder


def test_folder_inputs_are_its_regular_files_and_name_the_rest(tmp_path):
    folder = an_input_folder(tmp_path)
    assert files.folder_inputs(folder) == ([folder / "a.837"], [("link.837", "a symbolic link"),
                                                                ("pipe.837", "a FIFO"), ("sub", "a folder")])


def test_spark_batch_reads_a_folder_as_the_batch_reads_its_inbox(tmp_path):
    """Regression: the Spark runner listed folders on its own and read partial uploads (.part) the batch
    leaves alone."""
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
    from edi_pipeline.runners.batch import inbox_files
    from edi_pipeline.spark.job import input_files

    folder = an_input_folder(tmp_path)
    assert input_files([folder]) == [p.resolve() for p in inbox_files(folder)[0]] == [(folder / "a.837").resolve()]
