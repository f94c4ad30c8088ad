"""A run folder: one command's outputs, with a manifest (`unetpp-run.json`) and a lock (`.unetpp.lock`).

    with RunFolder(out_dir, settings, overwrite=args.overwrite, files=planned_outputs) as rf:
        ...                      # write outputs
        rf.finish(counts)        # complete (no failures) or partial

- unetpp writes only into a folder that is absent, empty or an earlier run folder of the same command
  (core.outputs.folder_problem); anything else is refused before any work.
- The manifest records the settings, the state (running / partial / complete), counts, dates, and `files`: every
  file the runs into this folder write, listed *before* they are written (so a killed run leaves no unlisted
  file). A planned output that exists but is not listed is someone else's file: the run is refused.
- A rerun with the same settings resumes; with different settings it is refused, naming the differing keys,
  unless `overwrite`: the listed files (and only those) are moved aside into a hidden sibling
  (`.NAME.unetpp-old`), the new run writes, and the old files are deleted only once it has finished; a failed or
  interrupted overwrite puts them back (at once, or on the next run). Files unetpp did not write stay untouched.
- The lock (created with O_EXCL, holding pid, host and start time) makes a second concurrent run into the folder
  fail at once; a lock left by a dead process on this host is taken over with a note.
- On an exception the manifest says partial; an OutputError raised inside the block exits 1 (work had begun).
- `settings=None`: a folder claimed without settings (train, run, serve --save): it always resumes.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from unetpp.atomic import ensure_dir, write_json_atomic
from unetpp.core.outputs import (  # noqa: F401 - re-exported: their historical home
    LOCK,
    MANIFEST,
    RUN_FILES,
    folder_problem,
    looks_like_ours,
    refuse_overlap,
    refuse_same_file,
)
from unetpp.errors import InputError, OutputError, UnetppError, expected_found


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


def _read_json(f: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(f.read_text()) if f.is_file() else None
    except (OSError, ValueError):
        return {"settings": {"<unreadable manifest>": True}}
    return data if isinstance(data, dict) else None


class RunFolder:
    """The manifest, file list and lock of one command's output folder (see the module docstring).

    `files`: the outputs this run will write (inside the folder, or beside it such as infer's summary);
    `legacy_patterns`: what an older manifest without a file list counts as the command's own (glob patterns on
    paths relative to the folder); `legacy_names`: top-level names that mark a folder an older unetpp wrote
    without any manifest (a training folder)."""

    def __init__(self, path: str | Path, settings: dict[str, Any] | None, overwrite: bool = False,
                 command: str = "", log: Any = None, files: Iterable[str | Path] = (),
                 legacy_patterns: Sequence[str] = (), legacy_names: Sequence[str] = ()) -> None:
        self.path = Path(path)
        self.settings = None if settings is None else _canonical(settings)
        self.overwrite = overwrite
        self.command = command
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.aside = self.path.with_name(f".{self.path.name}.unetpp-old")
        self.planned = sorted({self._rel(f) for f in files})
        self.legacy_patterns = tuple(legacy_patterns)
        self.legacy_names = tuple(legacy_names)
        self.manifest: dict[str, Any] = {}
        self.resumed = False
        self._locked = False
        self._finished: str | None = None
        self._created: list[Path] = []
        self._was_empty = False

    def _rel(self, f: str | Path) -> str:
        p = Path(f)
        return Path(os.path.relpath(p if p.is_absolute() else self.path / p, self.path)).as_posix()

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
        return _read_json(self.path / MANIFEST)

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

    def _own_files(self, old: dict[str, Any] | None) -> set[str] | None:
        """The files the folder's earlier runs wrote: the manifest's list; for an older manifest without one, the
        files matching the command's patterns (None: no patterns, every planned name counts as its own)."""
        if old is None:
            return set() if not self.legacy_names else None
        if isinstance(old.get("files"), list):
            return {str(f) for f in old["files"]}
        if not self.legacy_patterns:
            return None
        found = {p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()}
        return {f for f in found if any(fnmatch.fnmatchcase(f, pat) for pat in self.legacy_patterns)}

    def _refuse_foreign(self, own: set[str] | None) -> None:
        """A planned output that exists and that no earlier run here wrote belongs to someone else."""
        if own is None:
            return
        foreign = [rel for rel in self.planned if rel not in own and os.path.lexists(self.path / rel)
                   and not looks_like_ours(self.path / rel)]
        if foreign:
            shown = ", ".join(foreign[:4]) + (f" and {len(foreign) - 4} more" if len(foreign) > 4 else "")
            raise InputError(expected_found(
                f"output folder {self.path}", "no file that unetpp did not write under the names this run writes",
                f"{len(foreign)} such file(s): {shown}", "Move them away or choose another folder"))

    # -- context -------------------------------------------------------------------------------
    def __enter__(self) -> RunFolder:
        problem = folder_problem(self.path, self.command, self.legacy_names)
        if problem:
            raise InputError(problem)
        self._created = [p for p in [self.path, *self.path.parents] if not os.path.lexists(p)]
        self._was_empty = self.path.is_dir() and not any(self.path.iterdir())
        ensure_dir(self.path)
        try:
            self._acquire()
            self._enter_locked()
        except BaseException:
            self._release()
            self._remove_if_unused()
            raise
        return self

    def _enter_locked(self) -> None:
        try:
            self._restore_interrupted_overwrite()
        except OSError as exc:
            raise OutputError(f"cannot restore {self.aside} into {self.path}: {exc.strerror or exc}") from None
        old = self._read_manifest()
        replacing = (self.settings is not None and old is not None and old.get("settings") != self.settings)
        if replacing and not self.overwrite:
            keys = differing_keys(old.get("settings") or {}, self.settings or {})
            raise InputError(expected_found(
                f"output folder {self.path}", "a new folder or one from a run with the same settings",
                f"a run with different {', '.join(keys)}",
                "Rerun with the same settings to resume, pass --overwrite to replace it, or choose another folder"))
        own = self._own_files(old)
        if replacing and own is None:
            raise InputError(expected_found(
                f"--overwrite of {self.path}", "a run folder whose manifest lists the files unetpp wrote",
                "a folder from an older unetpp that did not record them",
                "--overwrite deletes only files unetpp recorded: delete the folder yourself or choose another"))
        self._refuse_foreign(own)
        old_id = (old or {}).get("run_id") or f"legacy-{(old or {}).get('started', '')}"
        if replacing:
            self._move_aside({**(old or {}), "run_id": old_id, "files": sorted(own or ())})
        self.resumed = old is not None and not replacing
        kept = sorted((own or set()) | set(self.planned)) if self.resumed else self.planned
        started = (old or {}).get("started") if self.resumed else None
        self.manifest = {"tool": "unetpp", "command": self.command, "settings": self.settings,
                         "state": "running", "started": started or _now(), "pid": os.getpid(),
                         "host": socket.gethostname(), "run_id": uuid.uuid4().hex, "counts": {}, "files": kept}
        if replacing:
            self.manifest["replacing"] = old_id
        if self.resumed:
            self.manifest["resumed"] = _now()
        self._write_manifest()

    def plan(self, files: Iterable[str | Path]) -> None:
        """More outputs this run will write, found during the run: checked and listed before they are written."""
        new = sorted({self._rel(f) for f in files} - set(self.manifest.get("files", [])))
        if not new:
            return
        planned, self.planned = self.planned, new
        try:
            self._refuse_foreign(set())
        finally:
            self.planned = sorted(set(planned) | set(new))
        self._write_manifest(files=sorted(set(self.manifest.get("files", [])) | set(new)))

    def record(self, files: Iterable[str | Path]) -> None:
        """Files this run has just written where it had checked that nothing else was (a generator's output):
        listed without the check `plan` makes."""
        self._write_manifest(files=sorted(set(self.manifest.get("files", [])) | {self._rel(f) for f in files}))

    # -- overwrite: the listed files go aside, come back if the new run does not finish ---------------------------
    def _move_aside(self, old: dict[str, Any]) -> None:
        try:
            self.aside.mkdir()
            write_json_atomic(self.aside / MANIFEST, old)  # first: marks the folder as this run folder's backup
            for rel in old["files"]:
                src = self.path / rel
                if rel.startswith("../") or not (src.is_file() or src.is_symlink()):
                    continue
                dst = self.aside / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.rename(src, dst)
            self._remove_emptied(old["files"])
        except OSError as exc:
            raise OutputError(f"cannot move the files of {self.path} aside to replace them: "
                              f"{exc.strerror or exc}") from None
        self.log(f"note: --overwrite: replacing the files unetpp wrote in {self.path} (the previous ones are "
                 "deleted when this run ends; other files stay)")

    def _remove_emptied(self, files: Sequence[str]) -> None:
        """Folders inside the run folder that held only the listed files, now moved aside (deepest first): the old
        run leaves no empty tree behind (restoring recreates them)."""
        folders = {parent for rel in files if not rel.startswith("../")
                   for parent in (self.path / rel).parents if parent != self.path and self.path in parent.parents}
        for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only where empty

    def _restore_interrupted_overwrite(self) -> None:
        """An overwrite killed before it finished left the old files aside: put them back. Runs with the lock held
        (a live overwriting run holds it, so its backup is never taken for an interrupted one)."""
        if not self.aside.is_dir():
            return
        backup = _read_json(self.aside / MANIFEST)
        if backup is None:
            if not any(self.aside.iterdir()):
                self.aside.rmdir()
                return
            raise OutputError(expected_found(f"{self.aside}", "the backup of an interrupted --overwrite",
                                             "a folder without its manifest", "Move it away"))
        current = self._read_manifest() or {}
        if current.get("state") == "complete" and current.get("replacing") == backup.get("run_id"):
            shutil.rmtree(self.aside)  # the new run finished; only the deletion of the old files was missed
            return
        self.log(f"note: an earlier --overwrite of {self.path} did not finish; restoring the previous files")
        self._restore(backup, current)

    def _restore(self, backup: dict[str, Any], current: dict[str, Any]) -> None:
        """Old files back (over new ones of the same name), then the new run's other files removed, then the old
        manifest back: each step can be repeated if this one is interrupted too."""
        old_files = set(backup.get("files") or [])
        for src in sorted(p for p in self.aside.rglob("*") if p.is_file() or p.is_symlink()):
            rel = src.relative_to(self.aside)
            if rel.as_posix() == MANIFEST:
                continue
            (self.path / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, self.path / rel)
        if current.get("run_id") and current.get("run_id") != backup.get("run_id"):
            for rel in current.get("files") or []:
                p = self.path / rel
                if rel not in old_files and not rel.startswith("../") and (p.is_file() or p.is_symlink()):
                    p.unlink()
        write_json_atomic(self.path / MANIFEST, backup)
        shutil.rmtree(self.aside)

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
            if exc is not None and self._remove_if_unused():
                return
            if self.aside.is_dir():
                if exc is None:
                    shutil.rmtree(self.aside, ignore_errors=True)
                else:
                    self._put_back()
        finally:
            self._release()

    def _remove_if_unused(self) -> bool:
        """A run that failed before writing anything leaves no folder it made behind (and an empty folder it was
        given empty)."""
        try:
            unused = (self.path in self._created or self._was_empty) and not self.aside.exists() and \
                all(p.name in RUN_FILES for p in self.path.iterdir())
        except OSError:
            return False
        if not unused:
            return False
        self._release()
        (self.path / MANIFEST).unlink(missing_ok=True)
        if not self._created:
            return True
        for folder in self._created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
        return True

    def _put_back(self) -> None:
        """The overwriting run failed: the previous files come back as they were."""
        backup = _read_json(self.aside / MANIFEST)
        if backup is None:
            return
        try:
            self._restore(backup, self.manifest)
            self.log(f"note: the overwriting run failed; the previous files of {self.path} are back as they were")
        except OSError as exc:
            self.log(f"note: could not restore {self.aside} into {self.path} ({exc.strerror or exc}); the next run "
                     "will try again")
