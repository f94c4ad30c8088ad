"""Calibration samples and the accuracy guard of `unetpp compile`: guide IoU of the source vs the artefact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unetpp.compare import compare_logits
from unetpp.config import PreprocessConfig
from unetpp.data.preprocess import list_inputs, name_few, read_gray, read_input
from unetpp.errors import InputError, UnetppError, expected_found
from unetpp.eval.metrics import guide_iou
from unetpp.infer.inputs import output_stem
from unetpp.runtimes import get_runtime

GUARD_BATCH = 8


class AccuracyDropError(UnetppError):
    """The compiled model scores worse than its source by more than the allowed drop."""


def calibration_samples(folder: Path, limit: int, val_dir: Path | None = None,
                        cfg: PreprocessConfig | None = None) -> tuple[list[np.ndarray], list[str]]:
    """Up to `limit` inputs of `folder`, evenly spread over its sorted files; refuses any validation id."""
    files = list_inputs(folder)
    if val_dir is not None:
        val_stems = {output_stem(p) for p in list_inputs(val_dir)}
        shared = sorted(output_stem(p) for p in files if output_stem(p) in val_stems)
        if shared:
            raise InputError(expected_found("--calib", "training inputs only (calibrating on val inflates the IoU)",
                                            f"{len(shared)} validation ids: {name_few(shared, 3)}"))
    if limit < 1:
        raise InputError(expected_found("--calib-count", "a positive integer", limit))
    if len(files) > limit:
        idx = np.linspace(0, len(files) - 1, limit).round().astype(int)
        files = [files[i] for i in sorted(set(idx.tolist()))]
    return [read_input(p, cfg) for p in files], [p.name for p in files]


def scored_pairs(val_dir: Path, masks_dir: Path) -> list[tuple[Path, Path]]:
    """(input, mask) for every validation input; every input needs masks_dir/<id>.png."""
    if not masks_dir.is_dir():
        raise InputError(expected_found("--masks", "a folder of <id>.png (dsb2018_96/masks/0)",
                                        f"nothing at {masks_dir}"))
    files = list_inputs(val_dir)
    missing = [output_stem(p) for p in files if not (masks_dir / f"{output_stem(p)}.png").is_file()]
    if missing:
        raise InputError(expected_found(f"masks in {masks_dir}", "<id>.png for every --val input",
                                        f"none for {name_few(missing)}"))
    return [(p, masks_dir / f"{output_stem(p)}.png") for p in files]


def predict(backend: str, model: Path, files: list[Path], options: dict[str, Any] | None = None) -> np.ndarray:
    """Logits (N, H, W) of `model` on the files, through the driver and runtime that infer and bench use."""
    from unetpp.core.driver import DriverSettings
    from unetpp.core.executors import run_batches
    from unetpp.infer.work import InferWork

    with get_runtime(backend, model, **(options or {})) as rt:
        work = InferWork(None, "BIN", rt.preprocess, (rt.output_channels or 1, *rt.input_shape[1:]))
        result = run_batches(files, work, rt, DriverSettings(batch_size=GUARD_BATCH, warmup=0, resume=False))
    if result.failures:
        raise InputError(result.failures[0]["error"])
    return np.stack([r["logits"][0] for r in result.records])


def compare(backend: str, reference: Path, candidate: Path, val_dir: Path, masks_dir: Path,
            threshold: float = 0.5) -> dict[str, Any]:
    """Guide IoU (per image, plain mean) of reference and candidate on the val set, and how many decisions flip."""
    pairs = scored_pairs(val_dir, masks_dir)
    files = [p for p, _ in pairs]
    masks = [read_gray(m) for _, m in pairs]
    ref, cand = predict(backend, reference, files), predict(backend, candidate, files)
    iou_ref = float(np.mean([guide_iou(r, m, threshold) for r, m in zip(ref, masks)]))
    iou_cand = float(np.mean([guide_iou(c, m, threshold) for c, m in zip(cand, masks)]))
    agreement = compare_logits(ref, cand, threshold)
    return {"n_images": len(files), "iou_guide_reference": iou_ref, "iou_guide_compiled": iou_cand,
            "iou_drop": iou_ref - iou_cand, "flipped_pixels": agreement["flipped_pixels"],
            "flipped_share": agreement["flipped_share"], "max_abs_logit_diff": agreement["max_abs_diff"],
            "val": str(val_dir), "masks": str(masks_dir)}
