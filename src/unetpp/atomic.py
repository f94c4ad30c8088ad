"""Atomic file writes: a temporary name in the same folder, then a rename."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from unetpp.errors import OutputError, expected_found

_UMASK = os.umask(0)
os.umask(_UMASK)


def ensure_dir(path: str | Path) -> Path:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(expected_found(f"cannot create output folder {path}", "a folder that exists or can be "
                                         "created", _why_not(path, exc))) from None
    if not os.access(path, os.W_OK):
        raise OutputError(f"output folder {path}: expected a writable folder, found one without write permission")
    return path


def check_writable(path: str | Path) -> Path:
    """Refuse, before any work, a file location that cannot be written (its folder cannot be made, or holds no
    new file: permission, a read-only or pseudo file system). Nothing is left behind."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(expected_found(f"output file {path}", "a file name", "a folder"))
    os.unlink(_temp_beside(path, ".probe"))
    return path


def _temp_beside(path: Path, suffix: str) -> str:
    """A new empty temporary file in `path`'s folder (made if needed); a file-system refusal is an OutputError."""
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    os.close(fd)
    return tmp


def _why_not(path: Path, exc: OSError) -> str:
    """Why a folder could not be made: the first existing ancestor that is a file, else the system's reason."""
    for parent in [path, *path.parents]:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent}, a file, where a folder is needed"
            break
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return f"{exc.strerror or exc} (in {parent})"


def _write_error(path: Path, exc: OSError) -> OutputError:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    return OutputError(expected_found(f"cannot write {path}", "a writable location", reason))


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds. A failure of the
    file system (permission, not a folder, disk full) becomes an OutputError naming the path; nothing is left
    under the final name and no temporary file stays behind."""
    path = Path(path)
    tmp = _temp_beside(path, ".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode a plain open() would
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _write_error(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temps(paths: Iterable[Path]) -> int:
    """Delete the temporary files that interrupted atomic writes of these paths left behind (a killed process):
    `.{name}.XXXXXXXX.tmp` beside each path. One listing per folder. Returns how many were removed."""
    by_dir: dict[Path, set[str]] = {}
    for p in paths:
        by_dir.setdefault(Path(p).parent, set()).add(Path(p).name)
    removed = 0
    for folder, names in by_dir.items():
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            if entry.startswith(".") and entry.endswith(".tmp") and entry[1:-4].rsplit(".", 1)[0] in names:
                (folder / entry).unlink(missing_ok=True)
                removed += 1
    return removed


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
