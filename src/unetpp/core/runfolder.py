"""A run folder: one command's outputs, with a manifest (`unetpp-run.json`) and a lock (`.unetpp.lock`).

    with RunFolder(out_dir, settings, overwrite=args.overwrite) as rf:
        ...                      # write outputs
        rf.finish(counts)        # complete (no failures) or partial

- The manifest records the settings, the state (running / partial / complete), counts and dates.
- A rerun with the same settings resumes; with different settings it is refused, naming the differing keys,
  unless `overwrite`: the old folder is renamed aside to a hidden sibling, a fresh one is made, and the old one is
  deleted only once the new run has finished (an interrupted overwrite puts the old folder back).
- The lock (created with O_EXCL, holding pid, host and start time) makes a second concurrent run into the folder
  fail at once; a lock left by a dead process on this host is taken over with a note.
- On an exception the manifest says partial; an OutputError raised inside the block exits 1 (work had begun).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from unetpp.atomic import ensure_dir, write_json_atomic
from unetpp.errors import InputError, OutputError, UnetppError, expected_found

MANIFEST = "unetpp-run.json"
LOCK = ".unetpp.lock"
RUN_FILES = (MANIFEST, LOCK)


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _canonical(obj: Any) -> Any:
    """Settings as they read back from JSON (tuples -> lists, paths -> str), so that comparisons are exact."""
    return json.loads(json.dumps(obj, default=str, sort_keys=True))


def differing_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two settings dicts."""
    out = []
    for k in sorted(set(old) | set(new), key=str):
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += differing_keys(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def refuse_overlap(output: str | Path, inputs: list[str | Path], what: str = "output folder") -> None:
    """Refuse an output folder equal to, inside, or containing an input folder (before any work)."""
    out = Path(output).resolve()
    for item in inputs:
        src = Path(item)
        if not src.is_dir():
            continue
        src = src.resolve()
        if out == src:
            relation = "the input folder itself"
        elif src in out.parents:
            relation = f"inside the input folder {src}"
        elif out in src.parents:
            relation = f"a folder that contains the input folder {src}"
        else:
            continue
        raise InputError(expected_found(f"{what} {output}", "a folder apart from the inputs", relation,
                                        "Choose an output folder outside the inputs"))


def refuse_same_file(output: str | Path, inputs: list[str | Path | None], what: str = "output") -> None:
    """Refuse an output file that is one of the inputs (it would be overwritten by its own result)."""
    out = Path(output).resolve()
    for item in inputs:
        if item is not None and Path(item).exists() and Path(item).resolve() == out:
            raise InputError(expected_found(f"{what} {output}", "a file other than the input", f"the input {item}",
                                            "Choose another output name"))


def unfinished_note(path: str | Path) -> str | None:
    """A note for a reader of a run folder that is not complete (partial, still running or killed, unreadable
    manifest); None for a complete one or a folder that is no run folder."""
    f = Path(path) / MANIFEST
    if not f.is_file():
        return None
    try:
        manifest = json.loads(f.read_text())
        state = manifest.get("state")
    except (OSError, ValueError, AttributeError):
        return f"note: {path} has an unreadable {MANIFEST}; scoring the outputs present"
    if state == "complete":
        return None
    counts = manifest.get("counts") or {}
    failed = counts.get("n_failed", counts.get("failed"))
    detail = f", {failed} item(s) failed" if failed else (f": {manifest['error']}" if manifest.get("error") else "")
    return (f"note: {path} is from a {manifest.get('command') or 'unetpp'} run that did not complete (state "
            f"{state}{detail}); scoring the outputs present")


class RunFolder:
    """The manifest and lock of one command's output folder (see the module docstring)."""

    def __init__(self, path: str | Path, settings: dict[str, Any], overwrite: bool = False,
                 command: str = "", log: Any = None) -> None:
        self.path = Path(path)
        self.settings = _canonical(settings)
        self.overwrite = overwrite
        self.command = command
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.aside = self.path.with_name(f".{self.path.name}.unetpp-old")
        self.manifest: dict[str, Any] = {}
        self.resumed = False
        self._locked = False
        self._finished: str | None = None
        self._created: list[Path] = []

    # -- lock ----------------------------------------------------------------------------------
    def _lock_path(self) -> Path:
        return self.path / LOCK

    def _acquire(self) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now(), "command": self.command}
        for _ in range(2):
            try:
                fd, tmp = tempfile.mkstemp(prefix=".unetpp.lock.", dir=self.path)
                with os.fdopen(fd, "w") as fh:
                    json.dump(info, fh)
                try:
                    os.link(tmp, self._lock_path())  # atomic and exclusive: the lock is never seen half-written
                finally:
                    os.unlink(tmp)
                self._locked = True
                return
            except FileExistsError:
                holder = self._read_lock()
                if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int) \
                        and not pid_alive(holder["pid"]):
                    self.log(f"note: taking over the stale lock {self._lock_path()} (pid {holder['pid']} "
                             f"started {holder.get('started', '?')} is no longer running)")
                    self._lock_path().unlink(missing_ok=True)
                    continue
                raise OutputError(expected_found(
                    f"output folder {self.path}", "no other unetpp run writing there",
                    f"a run in progress (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
                    f"{holder.get('started', '?')}; lock {self._lock_path()})",
                    "Wait for it to finish or choose another output folder")) from None
            except OSError as exc:
                raise OutputError(f"cannot lock output folder {self.path}: {exc.strerror or exc}") from None
        raise OutputError(f"cannot lock output folder {self.path}: the lock keeps reappearing")

    def _read_lock(self) -> dict[str, Any]:
        try:
            data = json.loads(self._lock_path().read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _release(self) -> None:
        if self._locked:
            self._lock_path().unlink(missing_ok=True)
            self._locked = False

    # -- manifest ------------------------------------------------------------------------------
    def _read_manifest(self) -> dict[str, Any] | None:
        f = self.path / MANIFEST
        try:
            data = json.loads(f.read_text()) if f.is_file() else None
        except (OSError, ValueError):
            return {"settings": {"<unreadable manifest>": True}}
        return data if isinstance(data, dict) else None

    def _write_manifest(self, **fields: Any) -> None:
        self.manifest.update(fields, updated=_now())
        try:
            write_json_atomic(self.path / MANIFEST, self.manifest)
        except OutputError:
            if not self._rewrite_in_place():
                raise

    def _rewrite_in_place(self) -> bool:
        """Disk full: a new copy cannot be made, but the manifest's own blocks can be rewritten (it is small)."""
        text = json.dumps(self.manifest, indent=2, default=str) + "\n"
        try:
            with open(self.path / MANIFEST, "r+") as fh:
                fh.write(text)
                fh.truncate()
            return True
        except OSError:
            return False

    def _restore_interrupted_overwrite(self) -> None:
        """An overwrite killed before it finished left the old folder aside: put it back. Runs with the lock
        held (a live overwriting run holds it, so its folder is never taken for an interrupted one)."""
        if not self.aside.is_dir():
            return
        current = self._read_manifest()
        if current is not None and current.get("state") == "complete":
            shutil.rmtree(self.aside, ignore_errors=True)  # the new run finished; only the deletion was missed
            return
        self.log(f"note: an earlier --overwrite of {self.path} did not finish; restoring the previous folder")
        self._release()
        shutil.rmtree(self.path)
        os.rename(self.aside, self.path)
        self._acquire()

    # -- context -------------------------------------------------------------------------------
    def __enter__(self) -> RunFolder:
        self._created = [p for p in [self.path, *self.path.parents] if not p.exists()]
        ensure_dir(self.path)
        self._acquire()
        try:
            try:
                self._restore_interrupted_overwrite()
            except OSError as exc:
                raise OutputError(f"cannot restore {self.aside} to {self.path}: {exc.strerror or exc}") from None
            old = self._read_manifest()
            if old is not None and old.get("settings") != self.settings:
                keys = differing_keys(old.get("settings") or {}, self.settings)
                if not self.overwrite:
                    raise InputError(expected_found(
                        f"output folder {self.path}", "a new folder or one from a run with the same settings",
                        f"a run with different {', '.join(keys)}",
                        "Rerun with the same settings to resume, pass --overwrite to replace it, or choose "
                        "another folder"))
                self._move_aside()
            self.resumed = old is not None and old.get("settings") == self.settings
            started = (old or {}).get("started") if self.resumed else None
            self.manifest = {"tool": "unetpp", "command": self.command, "settings": self.settings,
                             "state": "running", "started": started or _now(), "pid": os.getpid(),
                             "host": socket.gethostname(), "counts": {}}
            if self.resumed:
                self.manifest["resumed"] = _now()
            self._write_manifest()
        except BaseException:
            self._release()
            raise
        return self

    def _move_aside(self) -> None:
        self._release()
        try:
            if self.aside.exists():
                shutil.rmtree(self.aside)
            os.rename(self.path, self.aside)
            (self.aside / LOCK).unlink(missing_ok=True)
            self.path.mkdir()
        except OSError as exc:
            raise OutputError(f"cannot move {self.path} aside to replace it: {exc.strerror or exc}") from None
        self.log(f"note: --overwrite: replacing {self.path} (the previous contents are deleted when this run ends)")
        self._acquire()

    def finish(self, counts: dict[str, Any], failed: int = 0) -> None:
        """Record the counts; the state is complete when nothing failed, else partial."""
        self._finished = "complete" if not failed else "partial"
        self.manifest["counts"] = counts
        self._write_manifest(state=self._finished, finished=_now())

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc is not None or self._finished is None:
                # disk full: the manifest keeps its "running" state, which reads as unfinished too
                with contextlib.suppress(UnetppError):
                    self._write_manifest(state="partial", error=_first_line(exc) if exc else "not finished")
            if isinstance(exc, OutputError):
                exc.exit_code = 1
            if exc is not None and self.path in self._created and self._nothing_written():
                self._remove_created()
                return
            if self.aside.is_dir():
                if exc is None:
                    shutil.rmtree(self.aside, ignore_errors=True)
                else:
                    self._put_back()
        finally:
            self._release()

    def _nothing_written(self) -> bool:
        try:
            return not self.aside.exists() and all(p.name in RUN_FILES for p in self.path.iterdir())
        except OSError:
            return False

    def _remove_created(self) -> None:
        """A run that failed before writing anything leaves no folder it made behind."""
        self._release()
        (self.path / MANIFEST).unlink(missing_ok=True)
        for folder in self._created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break

    def _put_back(self) -> None:
        """The overwriting run failed: the previous folder comes back whole."""
        try:
            tmp = self.path.with_name(f".{self.path.name}.unetpp-failed")
            os.rename(self.path, tmp)
            os.rename(self.aside, self.path)
            self._locked = False  # our lock went away with the failed folder
            shutil.rmtree(tmp, ignore_errors=True)
            self.log(f"note: the overwriting run failed; {self.path} is back as it was")
        except OSError:
            pass
