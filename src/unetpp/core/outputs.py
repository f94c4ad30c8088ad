"""Where unetpp may write, checked before any work: it never writes over, or deletes, a file it did not write.

- A folder of outputs is absent, empty, or an earlier unetpp run folder (its `unetpp-run.json`); anything else
  is refused (`folder_problem`). The run folder itself (core.runfolder) records every file it writes.
- No input file may lie inside an output folder, and no output file may be an input: compared per file, on
  resolved paths (symlinks followed) and by inode (hard links), not only per folder (`refuse_inputs_inside`,
  `refuse_same_file`, `refuse_overlap`).
- A single output file (`export`, `compile`, a zoo package, a CSV) that exists is replaced only when it is
  recognisably unetpp's: a report beside it records its SHA-256, or its own content says so (`refuse_foreign`).
- `undo_new_dirs`: a command refused or failed leaves no folder it made behind.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from unetpp.errors import InputError, OutputError, expected_found

MANIFEST = "unetpp-run.json"
LOCK = ".unetpp.lock"
RUN_FILES = (MANIFEST, LOCK)


def _resolved(path: str | Path) -> Path:
    return Path(os.path.realpath(path))


def _is_bookkeeping(name: str) -> bool:
    """unetpp's own traces in a folder: the manifest, the lock, their temporary files."""
    return name in RUN_FILES or name.startswith((".unetpp.lock.", f".{MANIFEST}.", f".{LOCK}."))


def _names(entries: Sequence[str], n: int = 4) -> str:
    shown = ", ".join(sorted(entries)[:n])
    return shown + (f" and {len(entries) - n} more" if len(entries) > n else "")


def folder_problem(path: str | Path, command: str = "", legacy_names: Sequence[str] = ()) -> str | None:
    """Why unetpp may not write into `path`, or None: it is absent, empty, a run folder of `command` (or of no
    recorded command), or holds only entries matching `legacy_names` (glob patterns: what an older unetpp wrote
    without a manifest, e.g. a training folder)."""
    p = Path(path)
    if not os.path.lexists(p):
        return None
    if not p.is_dir():
        return expected_found(f"output folder {path}", "a folder (or a path where one can be made)", "a file")
    try:
        entries = [e for e in os.listdir(p) if not _is_bookkeeping(e)]
    except OSError as exc:
        return expected_found(f"output folder {path}", "a readable folder", exc.strerror or str(exc))
    if (p / MANIFEST).is_file():
        try:
            manifest = json.loads((p / MANIFEST).read_text())
            other = manifest.get("command") if isinstance(manifest, dict) else None
        except (OSError, ValueError):
            other = None
        if command and other and other != command:
            return expected_found(f"output folder {path}", f"a new folder or an earlier `unetpp {command}` run "
                                  "folder", f"a run folder of `unetpp {other}`", "Choose another folder")
        return None
    if not entries or (legacy_names and all(any(fnmatch.fnmatchcase(e, n) for n in legacy_names)
                                            for e in entries)):
        return None
    return expected_found(
        f"output folder {path}", f"a new or empty folder, or an earlier unetpp run folder (holding {MANIFEST})",
        f"a folder holding {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} unetpp did not write "
        f"({_names(entries)})", "unetpp writes only where nothing of yours can be overwritten or deleted: choose a "
        "new or empty folder")


def refuse_unlisted(folder: str | Path, files: Iterable[str | Path], command: str = "") -> None:
    """Writing a few files into a folder without a run of its own (`bench --report-only`): the folder must pass
    `folder_problem`, and an existing file must be listed in its manifest (or recognisably ours)."""
    problem = folder_problem(folder, command)
    if problem:
        raise InputError(problem)
    root = Path(folder)
    manifest = _json(root / MANIFEST) if (root / MANIFEST).is_file() else None
    listed = manifest.get("files") if manifest else None
    for f in (Path(x) for x in files):
        rel = Path(os.path.relpath(f, root)).as_posix()
        if os.path.lexists(f) and isinstance(listed, list) and rel not in listed and not looks_like_ours(f):
            raise InputError(expected_found(f"output {f}", "a new file, or one unetpp wrote earlier",
                                            "an existing file unetpp did not write", "Move it away"))


def refuse_overlap(output: str | Path, inputs: Iterable[str | Path], what: str = "output folder") -> None:
    """Refuse an output folder equal to, inside, or containing an input folder (before any work)."""
    out = _resolved(output)
    for item in inputs:
        if not Path(item).is_dir():
            continue
        src = _resolved(item)
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


def refuse_inputs_inside(output: str | Path, files: Iterable[str | Path], what: str = "output folder") -> None:
    """Refuse an output folder that holds one of the input files (resolved: a symlink to a file inside counts)."""
    out = _resolved(output)
    for f in files:
        real = _resolved(f)
        if real == out or out in real.parents:
            shown = f"{f}" if Path(f).resolve() == real else f"{f} (-> {real})"
            raise InputError(expected_found(f"{what} {output}", "a folder that holds none of the inputs",
                                            f"the input {shown} inside it",
                                            "Choose an output folder apart from the inputs"))


def same_file(a: str | Path, b: str | Path) -> bool:
    """Both name one file: the same resolved path, or the same inode (a hard link)."""
    if _resolved(a) == _resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_same_file(output: str | Path, inputs: Iterable[str | Path | None], what: str = "output") -> None:
    """Refuse an output file that is one of the inputs (by path, symlink or hard link)."""
    for item in inputs:
        if item is not None and os.path.lexists(item) and same_file(output, item):
            raise InputError(expected_found(f"{what} {output}", "a file other than the input", f"the input {item}",
                                            "Choose another output name"))


# -- single output files: ours or not ---------------------------------------------------------------------------
_REPORT_KEYS = ("onnx_sha256", "artefact_sha256")  # export's <out>.parity.json, compile's <stem>.compile.json


def _json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _sha256(path: Path) -> str | None:
    from unetpp.atomic import file_sha256

    try:
        return file_sha256(path)
    except OSError:
        return None


def recorded_by_report(path: Path, reports: Sequence[Path]) -> bool:
    """A report unetpp wrote beside `path` records `path`'s current SHA-256 (an IR's .bin: its .xml's)."""
    if path.suffix.lower() == ".bin" and path.with_suffix(".xml").is_file():
        return recorded_by_report(path.with_suffix(".xml"), reports)
    digest = None
    for rep in reports:
        data = _json(rep) if rep.is_file() else None
        if not data:
            continue
        for key in _REPORT_KEYS:
            if data.get(key):
                digest = digest or _sha256(path)
                if data[key] == digest:
                    return True
    return False


def looks_like_ours(path: Path) -> bool:
    """A file whose content says unetpp wrote it: a report or summary JSON of ours, an ONNX file carrying our
    metadata, a zoo package whose rdf.yaml holds `config.unetpp`."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = _json(path)
        return bool(data) and (data.get("tool") == "unetpp" or any(k in data for k in _REPORT_KEYS)
                               or {"filesinfo", "runtime", "model_sha256"} <= set(data)
                               or {"settings", "images", "status"} <= set(data))
    if suffix == ".onnx":
        from unetpp.model.metadata import read_onnx_metadata

        return read_onnx_metadata(path) is not None
    if suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                return "rdf.yaml" in zf.namelist() and b"unetpp" in zf.read("rdf.yaml")
        except (OSError, zipfile.BadZipFile, KeyError):
            return False
    return False


def csv_header(path: Path) -> str | None:
    """The first line of a text file, None when it cannot be read as UTF-8."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.readline().strip()
    except (OSError, UnicodeDecodeError):
        return None


def refuse_foreign(paths: Iterable[str | Path], reports: Sequence[str | Path] = (), what: str = "output",
                   ours: Callable[[Path], bool] | None = None) -> None:
    """Refuse, before any work, to replace an existing file that unetpp did not write: each path must be absent,
    recorded (by SHA-256) in one of `reports` that exists, or recognisably ours by content (`ours` adds a
    command's own test, e.g. a CSV header). A folder is refused."""
    reps = [Path(r) for r in reports]
    for p in (Path(x) for x in paths):
        if not os.path.lexists(p):
            continue
        if p.is_dir():
            raise OutputError(expected_found(f"{what} {p}", "a file name", "a folder"))
        if recorded_by_report(p, reps) or looks_like_ours(p) or (ours is not None and ours(p)):
            continue
        raise InputError(expected_found(f"{what} {p}", "a new file, or one unetpp wrote earlier",
                                        "an existing file unetpp did not write",
                                        "unetpp never replaces a file of yours: choose another name or move it"))


@contextlib.contextmanager
def undo_new_dirs(path: str | Path) -> Iterator[None]:
    """Folders on the way to `path` that do not exist yet are removed again (when empty) if the block fails."""
    p = Path(path)
    missing = [q for q in [p, *p.parents] if not os.path.lexists(q)]
    try:
        yield
    except BaseException:
        for q in missing:  # deepest first
            try:
                q.rmdir()
            except OSError:
                break
        raise


def check_new_file(path: str | Path, what: str = "output") -> None:
    """A file unetpp is about to create under a unique name must not exist yet (it never overwrites)."""
    if os.path.lexists(path):
        raise OutputError(expected_found(f"{what} {path}", "a new file", "an existing one"))
