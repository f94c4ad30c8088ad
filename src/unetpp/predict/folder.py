"""`predict_paths`: many images, one runtime, per-file failures collected, resumable, with a run summary."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm

from unetpp.atomic import ensure_dir, write_json_atomic, write_text_atomic
from unetpp.data.prepare import sample_image_path
from unetpp.errors import InputError, OutputError, UnetppError, expected_found
from unetpp.predict.image import PredictOptions, output_paths, outputs_complete, predict_one
from unetpp.predict.imageio import IMAGE_SUFFIXES
from unetpp.runtimes import Runtime

SUMMARY = "predict_summary.json"
COUNTS = "counts.csv"
GALLERY = "index.html"
COUNTS_HEADER = ["image", "height", "width", "mode", "nuclei", "seconds", "scale"]
Execute = Callable[[list[tuple[Path, str]]], Iterable[tuple[Path, str, "dict[str, Any] | None", "str | None"]]]


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


def gather_images(inputs: Sequence[str | Path], ids: Sequence[str] | None = None) -> list[tuple[Path, str]]:
    """(path, stem) per image to predict. A folder gives its files (each is tried: a non-image fails alone) or,
    laid out as DSB2018 stage1_train, its samples; with `ids`, each folder is a root of <id>/images/<id>.png."""
    out: list[tuple[Path, str]] = []
    for item in inputs:
        p = Path(item)
        if ids is not None:
            if not p.is_dir():
                raise InputError(expected_found(f"input {p} with --ids", "a folder of samples (stage1_train)",
                                                "a file" if p.exists() else "nothing there"))
            root = p / "stage1_train" if (p / "stage1_train").is_dir() else p
            out += [(_sample_image(root, i), i) for i in ids]
        elif p.is_dir():
            samples = _dsb_samples(p)
            if not samples and (p / "stage1_train").is_dir():
                samples = _dsb_samples(p / "stage1_train")
            files = samples or sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
            out += [(f, f.stem) for f in files]
        else:
            out.append((p, p.stem))
    return out


def _record_from_files(path: Path, stem: str, paths: dict[str, Path], mode: str) -> dict[str, Any]:
    h, w = cv2.imread(str(paths["mask"]), cv2.IMREAD_GRAYSCALE).shape[:2]
    n = max(0, len(paths["nuclei"].read_text().splitlines()) - 1)
    return {"image": str(path), "stem": stem, "height": h, "width": w, "mode": mode, "nuclei": n, "seconds": None}


def _previous(out_dir: Path, settings: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """Records of an earlier run into OUT with the same settings (so its complete images can be skipped), else
    None: outputs of unknown or different settings are recomputed. The summary is written when a run starts, so
    an interrupted run resumes too."""
    f = out_dir / SUMMARY
    try:
        old = json.loads(f.read_text()) if f.is_file() else None
    except (OSError, ValueError):
        old = None
    if not isinstance(old, dict) or old.get("settings") != settings:
        return None
    return {r["stem"]: r for r in old.get("images", [])}


def _counts_csv(records: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COUNTS_HEADER)
    for r in records:
        w.writerow([r["image"], r["height"], r["width"], r["mode"], r["nuclei"], r.get("seconds"), r.get("scale")])
    return buf.getvalue()


def predict_paths(inputs: Sequence[str | Path], out_dir: str | Path, runtime: Runtime,
                  options: PredictOptions | None = None, ids: Sequence[str] | None = None,
                  progress: bool = True, execute: Execute | None = None,
                  engine_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Predict every image; a bad file is recorded as a failure and the run goes on. Images whose outputs are all
    present from a run with the same settings are skipped. Writes OUT/predict_summary.json and OUT/counts.csv.
    `execute(todo)`, when given, runs predict_one on the (path, stem) items elsewhere (unetpp.core: Ray workers)
    and yields (path, stem, record or None, error or None) in todo's order; `runtime` is then only described.
    `engine_info`, filled by such an engine while it runs (cluster, workers), is added to the summary."""
    options = options or PredictOptions()
    out_dir = ensure_dir(out_dir)
    items = gather_images(inputs, ids)
    if not items:
        raise InputError(expected_found("images to predict", "at least one file", "none in " + ", ".join(
            str(i) for i in inputs)))
    settings = json.loads(json.dumps({"options": options.to_dict(), "runtime": runtime.describe()}, default=str))
    previous = _previous(out_dir, settings)
    if previous is None:
        write_json_atomic(out_dir / SUMMARY, {"status": "running", "settings": settings, "images": []})
    records: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    seen: dict[str, Path] = {}
    n_skipped = 0
    t0 = time.perf_counter()
    owned = not runtime.active and execute is None  # a runtime the caller activated stays active
    if execute is None:
        runtime.activate()
    todo: list[tuple[Path, str]] = []
    try:
        for path, stem in tqdm(items, desc="predict", unit="img", disable=not progress or len(items) < 4):
            if stem in seen:
                failures.append({"image": str(path), "error": expected_found(
                    f"image {path}", "a file name (stem) not used by another input", f"{stem!r} also from "
                    f"{seen[stem]}", "rename one of them or predict them into different folders")})
                continue
            seen[stem] = path
            paths = output_paths(out_dir, stem, options)
            if previous is not None and outputs_complete(out_dir, stem, options):
                records.append(previous.get(stem) or _record_from_files(path, stem, paths, options.mode))
                n_skipped += 1
                continue
            if execute is not None:
                todo.append((path, stem))
                continue
            try:
                records.append(predict_one(path, out_dir, runtime, options, stem=stem))
            except (UnetppError, cv2.error, OSError) as exc:
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                failures.append({"image": str(path), "error": msg})
                if progress:
                    print(f"unetpp predict: {msg}", file=sys.stderr)
        for path, _stem, record, error in execute(todo) if execute is not None and todo else ():
            if record is not None:
                records.append(record)
            else:
                failures.append({"image": str(path), "error": error or "failed"})
    finally:
        if owned:
            runtime.deactivate()
    summary = {
        "status": "complete", "n_images": len(items), "n_predicted": len(records) - n_skipped, "n_skipped": n_skipped,
        "n_failed": len(failures), "seconds": round(time.perf_counter() - t0, 3),
        "nuclei_total": sum(int(r["nuclei"]) for r in records), "out_dir": str(out_dir),
        "settings": settings, "date": datetime.now().isoformat(timespec="seconds"),
        "images": records, "failures": failures,
        "engine": "ray" if execute is not None else "local", **(engine_info or {}),
    }
    try:
        write_text_atomic(out_dir / COUNTS, _counts_csv(records))
        if options.overlay:
            _gallery(out_dir, records, summary)
        write_json_atomic(out_dir / SUMMARY, summary)
    except OSError as exc:
        raise OutputError(f"cannot write the run summary in {out_dir}: {exc}") from None
    return summary


def _gallery(out_dir: Path, records: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """OUT/index.html: every image's overlay with its size and nucleus count (no ground truth here)."""
    from unetpp.report.gallery import GalleryItem, write_gallery

    items = [GalleryItem(r["stem"], f"{r['stem']}_overlay.png", int(r["width"]), int(r["height"]), int(r["nuclei"]))
             for r in records]
    totals = {"images": len(records), "failed": summary["n_failed"], "nuclei": summary["nuclei_total"],
              "mode": summary["settings"]["options"]["mode"], "date": summary["date"]}
    write_gallery(out_dir / GALLERY, items, totals, title=f"unetpp predict: {out_dir.name}")


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"predicted {summary['n_predicted']} image(s), skipped {summary['n_skipped']} already complete, "
             f"{summary['n_failed']} failed; {summary['nuclei_total']} nuclei in all; {summary['seconds']:.1f} s",
             f"outputs in {summary['out_dir']} ({SUMMARY}, {COUNTS}"
             + (f", {GALLERY})" if summary["settings"]["options"].get("overlay") else ")")]
    if summary["failures"]:
        lines.append(f"failures ({summary['n_failed']}):")
        lines += [f"  {f['image']}: {f['error']}" for f in summary["failures"]]
    return "\n".join(lines)
