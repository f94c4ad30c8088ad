"""Score `unetpp predict` outputs (`<id>_labels.png`, `<id>_mask.png`) against stage1_train at original size."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.atomic import write_json_atomic, write_text_atomic
from unetpp.data.preprocess import name_few, read_bgr
from unetpp.errors import InputError, expected_found
from unetpp.eval.instance_io import (
    LABELS_SUFFIX,
    prediction_ids,
    read_label_image,
    read_pred_foreground,
    wrapped_ids_note,
)
from unetpp.eval.instance_metrics import (
    EMPTY_IMAGE_PRECISION,
    THRESHOLDS,
    InstanceScore,
    dataset_score,
    instance_score,
    mean_precision_at,
    pixel_scores,
)
from unetpp.eval.modality import MODALITIES, modality
from unetpp.eval.truth import GroundTruth, open_truth

# Called once per image with (id, predicted labels, true labels) so a caller can draw without reading twice.
ImageHook = Callable[[str, np.ndarray, np.ndarray], None]

CSV_FIELDS = ("id", "modality", "height", "width", "n_true", "n_pred", "count_error", "pixel_iou", "dice",
              "ap", "ap_50", "ap_75", "tp_50", "fp_50", "fn_50")
CONVENTIONS = {
    "ap": "per image: mean over t in 0.50..0.95 (step 0.05) of TP/(TP+FP+FN), match when IoU > t; then mean over "
          "images (DSB2018 / Kaggle)",
    "ap_empty_image": f"no true and no predicted nuclei -> precision {EMPTY_IMAGE_PRECISION} at every threshold",
    "pixel_iou": "per image (|P and G| + 1e-5) / (|P or G| + 1e-5), G = union of true nuclei, P = <id>_mask.png > 127 "
                 "(else labels > 0); mean over images",
    "count_error": "n_pred - n_true per image; count_mae = mean of its absolute value",
    "gt_overlaps": "later mask PNG (file-name order) wins",
}


def select_ids(pred_dir: Path, truth: GroundTruth, ids: Sequence[str] | None) -> list[str]:
    """The ids to score: those listed (each must have a prediction) or every prediction; each must have GT."""
    have = prediction_ids(pred_dir)
    if ids is None:
        if not have:
            raise InputError(expected_found(f"predictions in {pred_dir}", f"<id>{LABELS_SUFFIX} files", "none"))
        wanted = have
    else:
        wanted = list(dict.fromkeys(ids))
        lacking = [i for i in wanted if i not in set(have)]
        if lacking:
            raise InputError(expected_found(f"predictions in {pred_dir}", f"<id>{LABELS_SUFFIX} for every listed id",
                                            f"{len(lacking)} missing: {name_few(lacking)}"))
    no_gt = [i for i in wanted if not truth.has(i)]
    if no_gt:
        raise InputError(expected_found(f"ground truth in {truth.root}", f"{truth.expected()} for every scored id",
                                        f"{len(no_gt)} missing: {name_few(no_gt)}"))
    return wanted


def score_image(id_: str, pred: np.ndarray, pred_fg: np.ndarray, true: np.ndarray) -> tuple[dict, InstanceScore]:
    """One CSV row and the instance score of one image."""
    s = instance_score(pred, true)
    iou, dice = pixel_scores(pred_fg, true > 0)
    row = {"id": id_, "height": true.shape[0], "width": true.shape[1], "n_true": s.n_true, "n_pred": s.n_pred,
           "count_error": s.n_pred - s.n_true, "pixel_iou": iou, "dice": dice, "ap": s.ap,
           "ap_50": s.at(0.5), "ap_75": s.at(0.75), "tp_50": s.tp[0], "fp_50": s.fp[0], "fn_50": s.fn[0]}
    return row, s


def evaluate_instances(
    pred_dir: str | Path,
    gt: str | Path,
    ids: Sequence[str] | None = None,
    on_image: ImageHook | None = None,
) -> dict[str, Any]:
    """Pixel IoU/Dice, DSB2018 mAP, AP@0.5/0.75 and count error over the ids (sorted); no files written.
    `warnings` names 8-bit label images whose ids may have wrapped past 255 (scored, but suspect)."""
    pred_dir, truth = Path(pred_dir), open_truth(gt)
    rows, scores, suspect = [], [], []
    for id_ in sorted(select_ids(pred_dir, truth, ids)):
        pred = read_label_image(pred_dir / f"{id_}{LABELS_SUFFIX}")
        note = wrapped_ids_note(pred)
        if note:
            suspect.append(f"{id_}{LABELS_SUFFIX}: {note}")
        true = truth.labels(id_)
        if pred.shape != true.shape:
            raise InputError(expected_found(f"prediction {id_}{LABELS_SUFFIX}", f"the image's size {true.shape}",
                                            f"size {pred.shape}"))
        row, s = score_image(id_, pred, read_pred_foreground(pred_dir, id_, pred), true)
        image = truth.image_path(id_)
        row["modality"] = modality(read_bgr(image)) if image.is_file() else None
        rows.append(row)
        scores.append(s)
        if on_image is not None:
            on_image(id_, pred, true)
    n = len(rows)
    return {
        "n_images": n,
        "pixel_iou": sum(r["pixel_iou"] for r in rows) / n,
        "dice": sum(r["dice"] for r in rows) / n,
        "map": dataset_score(scores),
        "ap_50": mean_precision_at(scores, 0.5),
        "ap_75": mean_precision_at(scores, 0.75),
        "ap_per_threshold": {f"{t:.2f}": mean_precision_at(scores, t) for t in THRESHOLDS},
        "count_mae": sum(abs(r["count_error"]) for r in rows) / n,
        "n_true": sum(r["n_true"] for r in rows),
        "n_pred": sum(r["n_pred"] for r in rows),
        "pred_dir": str(pred_dir),
        "gt": str(truth.root),
        "gt_layout": truth.layout,
        "conventions": CONVENTIONS,
        "by_modality": by_modality(rows, scores),
        "modality_rule": "eval/modality.py: grey and mean < 100 fluorescence, grey and brighter brightfield, "
                         "colour stained",
        "per_image": rows,
        "warnings": wrapped_ids_warnings(suspect),
    }


def wrapped_ids_warnings(suspect: Sequence[str]) -> list[str]:
    """One warning for the 8-bit label images whose ids may have wrapped (their scores may be wrong)."""
    if not suspect:
        return []
    return [f"{len(suspect)} prediction(s) may have lost nuclei to 8-bit ids (their scores may be wrong; save "
            f"labels as 16-bit PNGs, as unetpp predict does): {suspect[0]}"
            + (f" (and {len(suspect) - 1} more)" if len(suspect) > 1 else "")]


def by_modality(rows: Sequence[dict[str, Any]], scores: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """The same figures per kind of image (eval/modality.py)."""
    out: dict[str, dict[str, Any]] = {}
    for kind in MODALITIES:
        sel = [i for i, r in enumerate(rows) if r.get("modality") == kind]
        if not sel:
            continue
        sub_scores = [scores[i] for i in sel]
        out[kind] = {"n_images": len(sel), "pixel_iou": sum(rows[i]["pixel_iou"] for i in sel) / len(sel),
                     "map": dataset_score(sub_scores), "ap_50": mean_precision_at(sub_scores, 0.5),
                     "n_true": sum(rows[i]["n_true"] for i in sel), "n_pred": sum(rows[i]["n_pred"] for i in sel)}
    return out


def write_instance_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """One row per image (CSV_FIELDS), scores with 6 decimals, written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: f"{v:.6f}" if isinstance(v, float) else v for k, v in r.items()})
    write_text_atomic(path, buf.getvalue())


def write_instance_summary(path: str | Path, report: dict[str, Any]) -> None:
    """The report without the per-image rows (they are in the CSV), written atomically."""
    write_json_atomic(path, {k: v for k, v in report.items() if k != "per_image"})
