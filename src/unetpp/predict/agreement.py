"""The `nuclei` scale rule's check by the instance model itself (predict/scale.py `agree`), inside predict's work.

`settle(work, state, result)` is called once per image by PredictWork.finish, after the pass at the first
estimate's scale has been post-processed. For a model with a border channel whose scale came from the first pass,
it measures that pass's nuclei at the model's input; only where they are off from the model's training median by
more than scale.AGREE_FACTOR does it segment the image again, synchronously, at the corrected scale (the work's own
window plan, tiles, blending and post-processing, on a second session of the model), up to scale.MAX_PASSES
passes, and keeps the pass closest to the target; where that pass enlarged the image, a check pass at half its
scale tells whether it saw pieces of nuclei (scale.agree, `_fragment_check`). Every pass is recorded in the
image's meta (`scale_passes`, `scale_kept`; predict_summary.json); `scale` becomes the kept pass's.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import cv2
import numpy as np

from unetpp.eval.metrics import sigmoid
from unetpp.predict import scale as scale_rules
from unetpp.predict.image import postprocess
from unetpp.predict.tiling import TileBlender, pad_to

_LOCK = threading.Lock()  # one extra pass at a time per process: the second session's threads are the model's


def _target(work: Any) -> float | None:
    rule = (work.model_meta.get("scale") or {}).get("rule")
    if not (isinstance(rule, str) and rule.startswith("nuclei")) or "border" not in work.outputs_meaning:
        return None
    return scale_rules.nuclei_target(rule)


def segment_at(work: Any, runtime: Any, img: np.ndarray, opts: Any, post: Any, s: float) -> dict[str, Any]:
    """One image at scale `s` in one synchronous call chain: the result predict would give at that scale."""
    h, w = img.shape[:2]
    sh, sw = max(1, round(h * s)), max(1, round(w * s))
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_LINEAR)
    plan = work.plan(sh, sw, opts)
    channels = len(work.outputs_meaning)
    blender = TileBlender.from_plan(plan, opts.floor, channels=channels if channels > 1 else None)
    padded = pad_to(small, plan.height, plan.width)
    start = 0
    for chunk in work._tiles(padded, blender, opts.batch):
        out = np.asarray(runtime.infer_padded(chunk)[0], np.float32)
        probs = sigmoid(out) if work.logits else out
        blender.add(start, probs[:, 0] if probs.shape[1] == 1 else probs)
        start += chunk.shape[0]
    maps = blender.result(sh, sw)
    maps = np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR) for m in maps]) if maps.ndim == 3 \
        else cv2.resize(maps, (w, h), interpolation=cv2.INTER_LINEAR)
    return postprocess(maps, post, work.outputs_meaning, s)


def _areas(result: dict[str, Any]) -> np.ndarray:
    return np.asarray(result["table"].column("area_px"), np.float64)


def settle(work: Any, state: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The result to keep for this image (see the module doc); `state["meta"]` records every pass."""
    meta, opts = state["meta"], state["opts"]
    target = _target(work)
    runtime = getattr(work, "rescale_runtime", None)
    if target is None or runtime is None or "first_pass_median_area" not in meta or opts.tta:
        return result
    first = scale_rules.Pass.of(meta["scale"], _areas(result))
    results = {0: result}

    def again(s: float) -> scale_rules.Pass:
        with _LOCK:
            r = segment_at(work, runtime, state["img"], opts, state["protocol"].post, s)
        results[len(results)] = r
        return scale_rules.Pass.of(s, _areas(r))

    best, passes = scale_rules.agree(first, again, target)
    meta["scale_passes"] = [p.to_dict() for p in passes]
    meta["scale_kept"] = best
    if best:
        meta["scale_first_estimate"] = meta["scale"]
        meta["scale"] = round(passes[best].scale, 6)
        if "first_pass" in meta:  # scale_check then judges the kept pass against the estimate it was run at
            meta["first_pass"] = dataclasses.replace(meta["first_pass"], median_area=passes[best].median_area,
                                                     uncertain=None)
    return results[best]
