"""Model-cache entries that heal: each built file is recorded with its SHA-256 when written, and checked when read.

A cached file that is missing, changed, truncated or unreadable is reported (`damage`) so that its caller builds
it again (saying so in one line) instead of handing a runtime a broken file. Records (JSON) carry the SHA-256 of
their own content (`write_signed_json` / `read_signed_json`): an edited or truncated record reads as damaged too.
One build at a time per cache folder (`build_lock`): a second process that asks for the same entry waits for the
first and then reads what it wrote; a killed build leaves no record, so the next use builds again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from unetpp.atomic import file_sha256, write_json_atomic

DIGEST_KEY = "record_sha256"


def artefact_files(path: Path) -> list[Path]:
    """The files one artefact is made of: an OpenVINO IR is its .xml and its .bin; anything else, itself."""
    path = Path(path)
    return [path, path.with_suffix(".bin")] if path.suffix.lower() == ".xml" else [path]


def file_hashes(paths: list[Path]) -> dict[str, str]:
    """name -> SHA-256 of each file (names, not paths: a folder can move)."""
    return {p.name: file_sha256(p) for p in paths}


def damage(folder: Path, hashes: dict[str, str] | None) -> str | None:
    """None when every file of `hashes` is in `folder` with that SHA-256; else what is wrong, in a few words."""
    if not hashes:
        return "written without the SHA-256 of its files (an older unetpp)"
    for name, sha in hashes.items():
        path = Path(folder) / name
        if not path.exists():
            return f"{name} is missing"
        try:
            found = file_sha256(path)
        except OSError as exc:
            return f"{name} cannot be read ({exc.strerror or exc})"
        if found != sha:
            return f"{name} changed since it was written (SHA-256 {found[:12]}, recorded {sha[:12]})"
    return None


def _digest(doc: dict[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != DIGEST_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def write_signed_json(path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """Write a record atomically with the SHA-256 of its own content; returns the record as written."""
    signed = {**{k: v for k, v in doc.items() if k != DIGEST_KEY}, DIGEST_KEY: _digest(doc)}
    write_json_atomic(path, signed)
    return signed


def read_signed_json(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) for an intact record; (None, None) where there is none (or an unsigned one of an older
    unetpp); (None, why) for a damaged one."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"{Path(path).name} cannot be read ({exc.strerror or exc})"
    try:
        doc = json.loads(text)
    except ValueError:
        return None, f"{Path(path).name} is not valid JSON (truncated or overwritten)"
    if not isinstance(doc, dict):
        return None, f"{Path(path).name} is not a record"
    if DIGEST_KEY not in doc:  # an older unetpp's record: not used, built again like a missing one
        return None, None
    if doc.get(DIGEST_KEY) != _digest(doc):
        return None, f"{Path(path).name} changed since it was written"
    return doc, None


@contextlib.contextmanager
def build_lock(folder: Path, say: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold `folder`'s build lock (an advisory lock on folder/.build.lock, released when the process ends, a kill
    included). Where no lock can be taken (no fcntl, a folder that cannot be written) the build runs unlocked:
    its files are still published atomically."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        fd = os.open(Path(folder) / ".build.lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            if say is not None:
                say(f"another unetpp process is building in {folder}: waiting for it")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
