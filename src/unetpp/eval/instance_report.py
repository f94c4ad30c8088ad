"""`unetpp evaluate --instances`: score predict's outputs at full resolution, write CSV, JSON and optionally
overlays with an HTML gallery, all into one report folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.atomic import ensure_dir
from unetpp.data.preprocess import read_bgr
from unetpp.eval.instance_eval import evaluate_instances, write_instance_csv, write_instance_summary
from unetpp.eval.instance_io import prediction_ids
from unetpp.eval.truth import open_truth
from unetpp.report.gallery import GalleryItem, write_gallery
from unetpp.report.overlay import write_overlay

CSV_NAME, SUMMARY_NAME, GALLERY_NAME, OVERLAY_DIR = "per_image.csv", "summary.json", "index.html", "overlays"


def default_report_dir(pred_dir: str | Path) -> Path:
    return Path(pred_dir) / "eval"


def evaluate_full_resolution(
    pred_dir: str | Path,
    gt: str | Path,
    ids: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    overlays: bool = False,
) -> dict[str, Any]:
    """evaluate_instances, then OUT/per_image.csv and OUT/summary.json; with overlays also OUT/overlays/<id>.png
    and OUT/index.html. Returns the report with `outputs` (paths written) added."""
    truth = open_truth(gt)
    prediction_ids(pred_dir)  # a missing PRED_DIR fails here, before the default report folder inside it is made
    out = ensure_dir(out_dir if out_dir is not None else default_report_dir(pred_dir))
    hook = None
    if overlays:
        overlay_dir = ensure_dir(out / OVERLAY_DIR)

        def hook(id_: str, pred: np.ndarray, true: np.ndarray) -> None:
            path = truth.image_path(id_)
            image = read_bgr(path) if path.is_file() else np.zeros((*true.shape, 3), np.uint8)
            write_overlay(overlay_dir / f"{id_}.png", image, pred, true)

    report = evaluate_instances(pred_dir, truth.root, ids, on_image=hook)
    outputs = {"csv": str(out / CSV_NAME), "summary": str(out / SUMMARY_NAME)}
    if overlays:
        items = [GalleryItem(r["id"], f"{OVERLAY_DIR}/{r['id']}.png", r["width"], r["height"], r["n_pred"],
                             r["n_true"], r["pixel_iou"], r["ap"]) for r in report["per_image"]]
        write_gallery(out / GALLERY_NAME, items, gallery_totals(report), title=f"unetpp evaluate: {pred_dir}")
        outputs.update(gallery=str(out / GALLERY_NAME), overlays=str(out / OVERLAY_DIR))
    report["outputs"] = outputs
    write_instance_csv(out / CSV_NAME, report["per_image"])
    write_instance_summary(out / SUMMARY_NAME, report)
    return report


def gallery_totals(report: dict[str, Any]) -> dict[str, object]:
    """The figures shown at the top of the evaluation gallery."""
    return {
        "images": report["n_images"],
        "DSB2018 mAP (IoU 0.50-0.95)": report["map"],
        "AP@0.50": report["ap_50"],
        "AP@0.75": report["ap_75"],
        "pixel IoU (per-image mean)": report["pixel_iou"],
        "Dice (per-image mean)": report["dice"],
        "nuclei predicted / true": f"{report['n_pred']} / {report['n_true']}",
        "count error (mean abs per image)": report["count_mae"],
    }
