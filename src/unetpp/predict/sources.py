"""Which images `unetpp predict` takes from its arguments, as labs have them.

- A file or a folder; a folder laid out as DSB2018 stage1_train (or a dataset root holding it) gives its samples,
  with `ids` each folder is a root of `<id>/images/<id>.png` (or `<id>.<image suffix>`).
- Files that are not images by their suffix (a microscope's `*_metadata.xml`, `Thumbs.db`, `.DS_Store`, notes,
  tables), in a folder or named alone, are skipped and named in one note, never counted as failures; predict's
  own outputs are never inputs.
- A path that does not exist is refused before anything is made; a file given twice (by another path, a link)
  is done once.
- A multi-page TIFF (a z-stack, a time series, channels) is segmented page by page as `<stem>_p<k>` (k from 1,
  zero-padded to the page count's width): never reduced to its first page.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from unetpp.data.prepare import sample_image_path
from unetpp.errors import InputError, expected_found
from unetpp.predict.imageio import IMAGE_SUFFIXES, page_count

SUMMARY = "predict_summary.json"
COUNTS = "counts.csv"
GALLERY = "index.html"
# Files predict writes: never taken as inputs when a folder is given (a rerun over a folder holding them).
OUTPUT_SUFFIXES = ("_mask.png", "_labels.png", "_prob.png", "_overlay.png", "_nuclei.csv")
RUN_NAMES = (SUMMARY, COUNTS, GALLERY, "unetpp-run.json", ".unetpp.lock")


@dataclass(frozen=True)
class Source:
    """One image to segment: a file, or one page of a multi-page TIFF (`page` from 1)."""

    path: Path
    stem: str
    page: int | None = None


@dataclass
class Gathered:
    sources: list[Source] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # not images by suffix
    repeated: list[Path] = field(default_factory=list)  # given again (same file): done once

    def notes(self) -> list[str]:
        out = []
        if self.skipped:
            kinds = sorted({p.suffix.lower() or p.name for p in self.skipped})
            out.append(f"note: skipped {len(self.skipped)} file(s) that are not images by their suffix "
                       f"({', '.join(kinds[:8])}{' ...' if len(kinds) > 8 else ''}), e.g. {self.skipped[0]}")
        if self.repeated:
            out.append(f"note: {len(self.repeated)} input(s) given more than once are done once, e.g. "
                       f"{self.repeated[0]}")
        return out


def is_own_output(path: Path) -> bool:
    """A file named like one of predict's outputs."""
    return path.name in RUN_NAMES or path.name.endswith(OUTPUT_SUFFIXES)


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _sample_image(root: Path, id_: str) -> Path:
    """A DSB2018-style sample (<root>/<id>/images/<id>.png), else <root>/<id>.<image suffix>."""
    dsb = sample_image_path(root, id_)
    if dsb.is_file():
        return dsb
    for suf in IMAGE_SUFFIXES:
        if (root / f"{id_}{suf}").is_file():
            return root / f"{id_}{suf}"
    return dsb


def _dsb_samples(folder: Path) -> list[Path]:
    subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [img for img in (sample_image_path(folder, p.name) for p in subs) if img.is_file()]


def _pages(path: Path, stem: str) -> list[Source]:
    """One source per page of a multi-page TIFF, else the file itself."""
    n = page_count(path) if path.suffix.lower() in (".tif", ".tiff") and path.is_file() else 1
    if n <= 1:
        return [Source(path, stem)]
    width = len(str(n))
    return [Source(path, f"{stem}_p{k:0{width}d}", k) for k in range(1, n + 1)]


def _refuse_missing(p: Path) -> None:
    if not p.exists():
        found = f"a broken link to {os.readlink(p)}" if p.is_symlink() else "nothing there"
        raise InputError(expected_found(f"input {p}", "an existing image file or folder", found,
                                        "Check the path (nothing was written)"))


def gather_sources(inputs: Sequence[str | Path], ids: Sequence[str] | None = None) -> Gathered:
    """The images to segment (see the module docstring). With `ids`, a listed id without a sample is kept as a
    source that fails alone (it is reported by name)."""
    got = Gathered()
    candidates: list[tuple[Path, str]] = []
    for item in inputs:
        p = Path(item)
        _refuse_missing(p)
        if ids is not None:
            if not p.is_dir():
                raise InputError(expected_found(f"input {p} with --ids", "a folder of samples (stage1_train)",
                                                "a file"))
            root = p / "stage1_train" if (p / "stage1_train").is_dir() else p
            candidates += [(_sample_image(root, i), i) for i in ids]
        elif p.is_dir():
            samples = _dsb_samples(p)
            if not samples and (p / "stage1_train").is_dir():
                samples = _dsb_samples(p / "stage1_train")
            files = samples or sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                                      and not is_own_output(f))
            got.skipped += [f for f in files if not is_image_name(f)]
            candidates += [(f, f.stem) for f in files if is_image_name(f)]
        elif not is_image_name(p):
            got.skipped.append(p)
        else:
            candidates.append((p, p.stem))
    seen: set[str] = set()
    for path, stem in candidates:
        real = os.path.realpath(path) if path.exists() else str(path)
        if real in seen:
            got.repeated.append(path)
            continue
        seen.add(real)
        got.sources += _pages(path, stem)
    return got
