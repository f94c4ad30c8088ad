"""Calibration samples and the accuracy guard of `unetpp compile`: guide IoU of the source vs the artefact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unetpp.config import PreprocessConfig
from unetpp.data.preprocess import list_inputs, name_few, read_gray, read_input
from unetpp.errors import InputError, UnetppError, expected_found
from unetpp.eval.metrics import guide_iou
from unetpp.infer.batching import output_stem
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
    """Logits (N, H, W) of `model` on the files, through the runtime that infer/bench use."""
    out = []
    with get_runtime(backend, model, **(options or {})) as rt:
        for start in range(0, len(files), GUARD_BATCH):
            chunk = files[start:start + GUARD_BATCH]
            x = np.stack([read_input(p) for p in chunk])
            if getattr(rt, "static_batch", None) is not None:  # a static-batch artefact: pad, then drop the copies
                n = rt.static_batch
                rows = []
                for s in range(0, len(x), n):
                    part = x[s:s + n]
                    padded = np.concatenate([part, np.repeat(part[-1:], n - len(part), 0)]) if len(part) < n else part
                    rows.append(rt.infer(padded)[: len(part)])
                y = np.concatenate(rows)
            else:
                y = rt.infer(x)
            out.append(y[:, 0])
    return np.concatenate(out)


def compare(backend: str, reference: Path, candidate: Path, val_dir: Path, masks_dir: Path,
            threshold: float = 0.5) -> dict[str, Any]:
    """Guide IoU (per image, plain mean) of reference and candidate on the val set, and how many decisions flip."""
    pairs = scored_pairs(val_dir, masks_dir)
    files = [p for p, _ in pairs]
    masks = [read_gray(m) for _, m in pairs]
    ref, cand = predict(backend, reference, files), predict(backend, candidate, files)
    iou_ref = float(np.mean([guide_iou(r, m, threshold) for r, m in zip(ref, masks)]))
    iou_cand = float(np.mean([guide_iou(c, m, threshold) for c, m in zip(cand, masks)]))
    flipped = int(np.count_nonzero((ref > threshold) != (cand > threshold)))
    return {"n_images": len(files), "iou_guide_reference": iou_ref, "iou_guide_compiled": iou_cand,
            "iou_drop": iou_ref - iou_cand, "flipped_pixels": flipped, "flipped_share": flipped / ref.size,
            "max_abs_logit_diff": float(np.abs(ref - cand).max()), "val": str(val_dir), "masks": str(masks_dir)}
