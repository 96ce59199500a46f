"""Output file names from input values (ISA13, GS06, an input's own name): reduced to a safe form, and
checked to be one plain name inside its folder before anything is written there."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from pathlib import Path
from typing import BinaryIO

from edi_pipeline.core.errors import WriteError

# Characters of a name made from an input's name; with what the batch adds (.GS06.999, .error.txt, the
# writer's .NAME.xxxxxxxx.tmp) it stays well under the 255 bytes a file system allows in one name.
NAME_LIMIT = 100
PART_LIMIT = 40  # characters of an envelope value (ISA13, GS06) inside a name
PLAIN_LIMIT = 200  # characters of any name output_path accepts

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PLAIN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}")
DIGEST = 12


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:DIGEST]


def safe_part(value: str, limit: int = PART_LIMIT) -> str:
    """`value` unchanged when it is letters, digits and `-_.` without a leading dot, at most `limit` long;
    else what is safe of it (unsafe runs as `_`, cut to fit) and a digest of the whole value, or only the
    digest when nothing safe is left. The same value always gives the same part."""
    if _PLAIN.fullmatch(value) and len(value) <= limit:
        return value
    keep = _UNSAFE.sub("_", value).lstrip("._")[:limit - DIGEST - 1]
    return f"{keep}-{_digest(value)}" if keep else _digest(value)


def safe_name(name: str, limit: int = NAME_LIMIT) -> str:
    """A file name from the input made safe as safe_part makes a value, keeping a short plain suffix
    (`.837`) so that outputs still show their type."""
    dot = name.rfind(".")
    suffix = name[dot:] if dot > 0 and _SUFFIX.fullmatch(name[dot:]) else ""
    stem = name[:len(name) - len(suffix)]
    if _PLAIN.fullmatch(stem) and len(name) <= limit:
        return name
    keep = _UNSAFE.sub("_", stem).lstrip("._")[:limit - len(suffix) - DIGEST - 1]
    return f"{keep}-{_digest(name)}{suffix}" if keep else f"{_digest(name)}{suffix}"


def output_path(folder: Path, name: str) -> Path:
    """FOLDER/NAME for a writer of batch or validate outputs, once NAME is known to be one plain file name
    (no separator, no leading dot, bounded) and FOLDER/NAME is not a link, folder or device: so nothing is
    written outside FOLDER and no folder is made from an input value. WriteError otherwise."""
    if not _PLAIN.fullmatch(name) or len(name) > PLAIN_LIMIT:
        raise WriteError(f"{folder}: refused to write a file of an unsafe name ({len(name)} characters)")
    path = folder / name
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise WriteError(f"cannot write {path}: it exists and is not a regular file")
    return path


class AckNames:
    """The paths of one file's acknowledgments in ACK_DIR: NAME.CONTROL.SUFFIX, or NAME.CONTROL.ISA-INDEX.SUFFIX
    when the file repeats the control number (ISA-INDEX: the ISA's segment position), and
    NAME.CONTROL.ISA-INDEX-N.SUFFIX for the Nth use of one (N from 3: groups of one interchange sharing a
    GS06): never one name twice. The name and the control number are made safe (safe_name, safe_part)."""

    def __init__(self, ack_dir: Path, name: str):
        self.ack_dir, self.base = ack_dir, safe_name(name)
        self._names: set[str] = set()

    def __call__(self, control_number: str, isa_index: int, suffix: str) -> Path:
        file_name = f"{self.base}.{safe_part(control_number)}.{suffix}"
        n = 1
        while file_name in self._names:
            n += 1
            file_name = f"{self.base}.{safe_part(control_number)}.{isa_index}{f'-{n}' if n > 2 else ''}.{suffix}"
        self._names.add(file_name)
        return output_path(self.ack_dir, file_name)


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """`path` opened for reading, never through a link and never blocking on a FIFO; OSError unless it is
    a regular file."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
