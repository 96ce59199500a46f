"""Files written whole or not at all, file locks, file digests and which entries of an input folder are
files to read: the one place that touches them."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import IO, Iterator

from edi_pipeline.core.errors import WriteError


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable: fsync the folder itself (where the OS allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # a file system that cannot sync a folder (some network and FUSE mounts)
    finally:
        os.close(fd)


def replace_file(src: str | os.PathLike, target: str | os.PathLike) -> None:
    """Rename `src` onto `target` (atomic within a file system) and fsync `target`'s folder, so the
    rename survives a crash: the one way a finished file is put in its place."""
    os.replace(src, target)
    _fsync_dir(Path(target).parent)


@contextlib.contextmanager
def _replace_atomically(target: Path, mode: int | None, binary: bool,
                        encoding: str = "utf-8") -> Iterator[IO]:
    """A file object on a temporary file beside `target`, renamed onto it on success and removed on
    failure; a `target` that exists and is not a regular file (/dev/null, a FIFO) is written straight
    through, never renamed over."""
    kind = {"mode": "wb"} if binary else {"mode": "w", "encoding": encoding, "errors": "surrogateescape",
                                          "newline": ""}
    if target.exists() and not target.is_file():
        with open(target, **kind) as fh:
            yield fh
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except ValueError:  # a NUL byte: no file system takes the name (nor should it show in a message)
        raise WriteError("cannot write a file whose path holds a NUL byte") from None
    except OSError as exc:
        raise WriteError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, **kind) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        replace_file(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike | None, mode: int | None = None,
                  encoding: str = "utf-8") -> Iterator[IO[str]]:
    """Open `path` for writing through a temporary file renamed into place on success (mode 0600
    unless `mode` says otherwise); `None` or `-` writes to stdout. A failure leaves no partial file."""
    if path is None or str(path) == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    with _replace_atomically(Path(path), mode, False, encoding) as fh:
        yield fh


@contextlib.contextmanager
def atomic_binary(path: str | os.PathLike, mode: int | None = None) -> Iterator[IO[bytes]]:
    """atomic_output for bytes: a binary file object, renamed onto `path` on success."""
    with _replace_atomically(Path(path), mode, True) as fh:
        yield fh


class LockHeld(Exception):
    """file_lock(wait=False) found the lock taken."""


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing) while inside; it goes with the process.
    With `wait` False, raise LockHeld at once when another process holds it. No lock where flock is missing."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise LockHeld(str(path)) from None
        yield


def atomic_copy(src: str | os.PathLike, target: str | os.PathLike, mode: int | None = None) -> None:
    """Copy a file so that `target` appears whole or not at all."""
    with _replace_atomically(Path(target), mode, True) as out, open(src, "rb") as fh:
        shutil.copyfileobj(fh, out, 1 << 20)

def path_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, read in chunks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# Names upload tools give a file while it is written (renamed when complete): never read.
PARTIAL_SUFFIXES = (".part", ".filepart", ".partial", ".tmp", ".crdownload", ".uploading")

_KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO",
          stat.S_IFCHR: "a device", stat.S_IFBLK: "a device", stat.S_IFSOCK: "a socket"}


def folder_inputs(folder: str | os.PathLike) -> tuple[list[Path], list[tuple[str, str]]]:
    """The folder's regular files in name order, hidden files and partial uploads left out; and (name, what
    it is) for each other entry (a link, folder, FIFO, device), which is never opened (a link is not
    followed)."""
    files, others = [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") or entry.name.lower().endswith(PARTIAL_SUFFIXES):
                continue
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:  # gone since listed
                continue
            if stat.S_ISREG(mode):
                files.append(Path(entry.path))
            else:
                others.append((entry.name, _KINDS.get(stat.S_IFMT(mode), "not a file")))
    return sorted(files), sorted(others)
