"""Score inference outputs (`<id>_0.bin`/`.npy`, or a summary JSON's filesinfo) against dsb2018_96/masks/0."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unetpp.atomic import write_text_atomic
from unetpp.data.preprocess import name_few, read_gray, read_logits
from unetpp.errors import InputError, expected_found
from unetpp.eval.metrics import binarize_gt, dice, guide_iou, guide_pred, upstream_iou

OUTPUT_SUFFIXES = (".bin", ".npy")
CSV_FIELDS = ("id", "iou_guide", "dice", "pred_pixels", "gt_pixels")


def output_id(path: Path) -> str | None:
    """`<id>_0.bin` -> `<id>`; None for anything that is not output 0."""
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        return None
    stem = path.name[: -len(path.suffix)]
    return stem[:-2] if stem.endswith("_0") else None


def _add(found: dict[str, Path], path: Path) -> None:
    id_ = output_id(path)
    if id_ is None:
        return
    if id_ in found and found[id_] != path:
        raise InputError(expected_found(f"results for id {id_}", "one output file", f"{found[id_]} and {path}"))
    found[id_] = path


def _from_summary(summary: Path) -> dict[str, Path]:
    try:
        data = json.loads(summary.read_text())
        filesinfo = data["filesinfo"]
        entries = filesinfo.values() if isinstance(filesinfo, dict) else filesinfo
        outfiles = [Path(f) for e in entries for f in e["outfiles"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(expected_found(f"summary {summary}", "JSON with filesinfo {index: {infiles, outfiles}}",
                                        f"{type(exc).__name__}: {exc}")) from None
    base = summary.parent
    dirname = summary.stem[: -len("_summary")] if summary.stem.endswith("_summary") else ""
    found: dict[str, Path] = {}
    missing = []
    for f in outfiles:
        cands = [f, base / f, base / f.name] + ([base / dirname / f.name] if dirname else [])
        hit = next((c for c in cands if c.is_file()), None)
        if hit is None:
            missing.append(str(f))
        else:
            _add(found, hit)
    if missing:
        raise InputError(expected_found(f"output files listed in {summary}", "existing files",
                                        f"{len(missing)} missing: {name_few(missing, 3)}"))
    return found


def find_results(results: str | Path) -> dict[str, Path]:
    """Map id -> output-0 file, from a results folder or a summary JSON."""
    results = Path(results)
    if results.is_file() and results.suffix.lower() == ".json":
        found = _from_summary(results)
    elif results.is_dir():
        found = {}
        for p in sorted(results.iterdir()):
            if p.is_file():
                _add(found, p)
    else:
        raise InputError(expected_found("results", "a folder of <id>_0.bin/.npy files or a summary JSON",
                                        f"nothing usable at {results}"))
    if not found:
        raise InputError(expected_found(f"results {results}", "<id>_0.bin or <id>_0.npy output files", "none"))
    return found


def evaluate(
    results: str | Path,
    masks_dir: str | Path,
    ids: Sequence[str] | None = None,
    csv_path: str | Path | None = None,
    threshold: float = 0.5,
    batch_size: int = 16,
) -> dict[str, Any]:
    """Guide IoU (the headline), upstream IoU and Dice over sorted ids; optionally a per-image CSV."""
    masks_dir = Path(masks_dir)
    if not masks_dir.is_dir():
        raise InputError(expected_found("masks folder", "dsb2018_96/masks/0 with <id>.png", f"nothing at {masks_dir}"))
    found = find_results(results)
    if ids is not None:
        wanted = list(dict.fromkeys(ids))
        lacking = [i for i in wanted if i not in found]
        if lacking:
            raise InputError(expected_found(f"results {results}", "an output for every id in the ids list",
                                            f"none for {name_few(lacking)}"))
        found = {i: found[i] for i in wanted}
    order = sorted(found)
    no_mask = [i for i in order if not (masks_dir / f"{i}.png").is_file()]
    if no_mask:
        raise InputError(expected_found(f"masks in {masks_dir}", "<id>.png for every result",
                                        f"none for {name_few(no_mask)}"))
    logits_all, masks_all, rows = [], [], []
    for id_ in order:
        mask = read_gray(masks_dir / f"{id_}.png")
        if mask.shape[0] != mask.shape[1]:
            raise InputError(expected_found(f"mask {id_}", "a square mask", f"shape {mask.shape}"))
        logits = read_logits(found[id_], size=mask.shape[0])
        logits_all.append(logits)
        masks_all.append(mask)
        rows.append({
            "id": id_,
            "iou_guide": guide_iou(logits, mask, threshold),
            "dice": dice(logits, mask, threshold),
            "pred_pixels": int(guide_pred(logits, threshold).sum()),
            "gt_pixels": int(binarize_gt(mask).sum()),
        })
    n = len(rows)
    report = {
        "iou_guide": sum(r["iou_guide"] for r in rows) / n,
        "iou_upstream": upstream_iou(logits_all, masks_all, batch_size),
        "dice": sum(r["dice"] for r in rows) / n,
        "n_images": n,
        "per_image": rows,
    }
    if csv_path is not None:
        write_per_image_csv(csv_path, rows)
    return report


def write_per_image_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """id, iou_guide, dice, pred_pixels, gt_pixels; one row per image, written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({**r, "iou_guide": f"{r['iou_guide']:.6f}", "dice": f"{r['dice']:.6f}"})
    write_text_atomic(path, buf.getvalue())
