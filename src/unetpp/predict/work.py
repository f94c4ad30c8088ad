"""`unetpp predict`'s work for the driver: an image in, its tiles (or its one resized input) as units, blended
probabilities back, nuclei and files out.

prepare (decode, rescale, cut and normalise tiles) runs ahead of the runtime; accept (sigmoid, blending) and
finish (threshold, instance split, PNG/CSV writing) run behind it; tiles of consecutive images share batches.
An item with `image` set (the Python API, the server) is not read from disk; with no `out_dir` nothing is written
and the record carries the arrays.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from unetpp.config import PreprocessConfig
from unetpp.core.driver import BatchWork
from unetpp.data.preprocess import normalize
from unetpp.errors import InputError, UnetppError, expected_found
from unetpp.eval.metrics import sigmoid
from unetpp.predict import agreement
from unetpp.predict import scale as scale_rules
from unetpp.predict.first_pass import estimate_nucleus_area, scale_check
from unetpp.predict.image import (
    PredictOptions,
    output_paths,
    postprocess,
    record_from_files,
    write_outputs,
)
from unetpp.predict.imageio import ImageInfo, read_image
from unetpp.predict.protocol import PredictProtocol
from unetpp.predict.tiling import TileBlender, WindowPlan, pad_to, plan_windows


@dataclass(frozen=True)
class PredictItem:
    """One image: a file (`path`) or an array already in memory (`image`, BGR uint8 HxWx3)."""

    stem: str
    path: Path | None = None
    image: np.ndarray | None = None
    page: int | None = None  # one page (from 1) of a multi-page TIFF
    options: PredictOptions | None = None  # this item's own options (a server's request); None: the work's


class PredictWork(BatchWork):
    catch = (UnetppError, cv2.error, OSError)

    def __init__(self, options: PredictOptions, cfg: PreprocessConfig, out_dir: Path | None = None,
                 previous: dict[str, dict[str, Any]] | None = None, first_pass_runtime: Any = None,
                 outputs_meaning: list[str] | None = None, normalizer: Any = None, logits: bool = True,
                 input_shape: tuple[int, int, int] | None = None, model_meta: dict[str, Any] | None = None,
                 size_step: int | None = None, protocol: PredictProtocol | None = None,
                 rescale_runtime: Any = None) -> None:
        self.model_meta = model_meta or {}
        self.outputs_meaning = outputs_meaning or ["foreground"]
        # the model's own protocol (resolved once from its metadata); each item's options are applied to it
        self.protocol = protocol or PredictProtocol.of_model(self.model_meta, self.outputs_meaning)
        self.size_step = size_step  # the runtime's: H/W free in multiples of it (None: input_shape only)
        self.options, self.cfg, self.out_dir = options, cfg, out_dir
        self.normalizer = normalizer or functools.partial(normalize, cfg=cfg)
        self.logits = logits
        self.input_shape = tuple(input_shape or (3, cfg.size, cfg.size))
        self.previous = previous or {}
        self._first_pass = first_pass_runtime  # an inactive runtime copy for the `nuclei` scale rule's first pass
        # a second session of the model for the scale check's extra passes (predict/agreement.py), activated on use
        self.rescale_runtime = rescale_runtime
        self._first_pass_lock = threading.Lock()
        # called (item key, units done, units in all) as each item's outputs come back (the API's progress)
        self.unit_progress: Callable[[str, int, int], None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_first_pass_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._first_pass_lock = threading.Lock()

    # -- identity and resume -------------------------------------------------------------------
    def key(self, item: PredictItem) -> str:
        if item.path is None:
            return item.stem
        return f"{item.path} (page {item.page})" if item.page else str(item.path)

    def outputs(self, item: PredictItem) -> list[Path]:
        if self.out_dir is None:
            return []
        return list(output_paths(self.out_dir, item.stem, self.options).values())

    def done_record(self, item: PredictItem) -> dict[str, Any]:
        rec = self.previous.get(item.stem) or record_from_files(
            item.path, item.stem, output_paths(self.out_dir, item.stem, self.options), self.options.mode)
        return {**rec, "key": self.key(item), "skipped": True}

    # -- the three stages ----------------------------------------------------------------------
    def prepare(self, item: PredictItem) -> tuple[dict[str, Any], Iterator[np.ndarray]]:
        t0 = time.perf_counter()
        if item.image is not None:
            img = np.ascontiguousarray(item.image)
            info = ImageInfo(item.stem, int(img.shape[0]), int(img.shape[1]), 3, str(img.dtype))
        opts = item.options or self.options
        protocol = self.protocol.apply(opts)
        if item.image is None:
            img, info = read_image(item.path, opts.bit16, item.page)
        state: dict[str, Any] = {"img": img, "info": info, "t0": t0, "opts": opts, "protocol": protocol,
                                 "key": self.key(item), "units_done": 0, "units_total": TTA_VIEWS if opts.tta else 1}
        size = self.input_shape[-1]
        if protocol.mode == "resize":
            state["meta"] = {"scale": None, "n_tiles": 1}
            units = iter([self.normalizer(cv2.resize(img, (size, size)))[None]])
            return state, (with_tta(units, state) if opts.tta else units)
        factor, meta = self._factor(img, protocol)
        h, w = img.shape[:2]
        sh, sw = max(1, round(h * factor)), max(1, round(w * factor))
        small = img if (sh, sw) == (h, w) else cv2.resize(img, (sw, sh), interpolation=cv2.INTER_LINEAR)
        plan = self.plan(sh, sw, opts, protocol)
        padded = pad_to(small, plan.height, plan.width)
        blender = TileBlender.from_plan(plan, opts.floor,
                                        channels=len(self.outputs_meaning) if len(self.outputs_meaning) > 1 else None)
        meta.update(scale=round(factor, 6), n_tiles=blender.n_tiles, window=[plan.win_h, plan.win_w],
                    computed_px=plan.computed_pixels, output_px=plan.output_pixels)
        state["units_total"] *= blender.n_tiles
        state.update(meta=meta, blender=blender, small_shape=(sh, sw))
        units = self._tiles(padded, blender, opts.batch)
        return state, (with_tta(units, state) if opts.tta else units)

    def plan(self, height: int, width: int, opts: PredictOptions | None = None,
             protocol: PredictProtocol | None = None) -> WindowPlan:
        """The windows of a scaled image: a model with free height/width and its own scale rule (or an explicit
        --window) gets the fewest computed pixels (tiling.plan_windows); a fixed-size model its own size."""
        opts = opts or self.options
        protocol = protocol or self.protocol.apply(opts)
        size = self.input_shape[-1]
        if opts.window is not None and opts.window != size and not self.size_step:
            raise InputError(expected_found("--window", f"{size} (this model takes {size}x{size} inputs only)",
                                            opts.window, "export the model with free height/width"))
        free = self.size_step if protocol.free_windows else None
        return plan_windows(height, width, size, opts.overlap, step=free, window=opts.window)

    def _tiles(self, padded: np.ndarray, blender: TileBlender, step: int) -> Iterator[np.ndarray]:
        th, tw = blender.win_h, blender.win_w
        for start in range(0, blender.n_tiles, step):
            k = min(step, blender.n_tiles - start)
            chunk = np.empty((k, self.input_shape[0], th, tw), np.float32)
            for i in range(k):
                y, x = blender.corner(start + i)
                chunk[i] = self.normalizer(padded[y:y + th, x:x + tw])
            yield chunk

    def _factor(self, img: np.ndarray, protocol: PredictProtocol) -> tuple[float, dict[str, Any]]:
        """The factor an image is rescaled by (its scale rule), and what the record says about it. The accuracy
        engineer's scale-agreement step goes here, after the first pass (one call site)."""
        rule = protocol.scale_rule
        h, w = img.shape[:2]
        meta: dict[str, Any] = {"scale_rule": rule if isinstance(rule, str) else "fixed"}
        if isinstance(rule, float):
            return rule, meta
        if rule.startswith("nuclei"):
            with self._first_pass_lock:  # a second session of the model, used by this (prepare) thread only
                rt = self._first_pass
                if rt is None:
                    raise UnetppError("the `nuclei` scale rule needs a runtime for its first pass")
                how = protocol.first_pass_labelling
                first = estimate_nucleus_area(img, rt, how.threshold, how.min_area, how.split)
            meta["first_pass_median_area"] = first.median_area
            meta["first_pass"] = first
            return scale_rules.nuclei_scale(first.median_area, h, w, self.input_shape[-1],
                                            scale_rules.nuclei_target(rule)), meta
        return scale_rules.geometric_scale(rule, h, w, self.input_shape[-1]), meta

    def accept(self, state: dict[str, Any], start: int, outputs: np.ndarray) -> None:
        probs = sigmoid(outputs) if self.logits else np.asarray(outputs, np.float32)
        if "tta" in state:
            for tile, mean in tta_collect(state["tta"], start, probs):
                self._deliver(state, tile, mean[None])
        else:
            self._deliver(state, start, probs)
        if self.unit_progress is not None:
            state["units_done"] += int(outputs.shape[0])
            self.unit_progress(state["key"], state["units_done"], state["units_total"])

    def _deliver(self, state: dict[str, Any], start: int, probs: np.ndarray) -> None:
        if "blender" in state:
            state["blender"].add(start, probs[:, 0] if probs.shape[1] == 1 else probs)
        else:
            state["prob"] = probs[0, 0] if probs.shape[1] == 1 else probs[0]

    def finish(self, item: PredictItem, state: dict[str, Any]) -> dict[str, Any]:
        img, info = state["img"], state["info"]
        h, w = img.shape[:2]
        if "blender" in state:
            sh, sw = state["small_shape"]
            prob = state["blender"].result(sh, sw)
        else:
            prob = state["prob"]
        prob = _resize_maps(prob, h, w)
        opts, protocol = state["opts"], state["protocol"]
        result = postprocess(prob, protocol.post, self.outputs_meaning, state["meta"].get("scale"))
        result = agreement.settle(self, state, result)  # the instance model's own check of the scale
        first = state["meta"].pop("first_pass", None)
        if first is not None:  # the estimate against what this pass found
            areas = np.asarray(result["table"].column("area_px"), np.float64)
            state["meta"]["scale_check"] = scale_check(first, areas, state["meta"]["scale"])
        result["meta"] = state["meta"]
        record = {"image": str(item.path) if item.path is not None else None, "stem": item.stem,
                  **({"page": item.page} if item.page else {}),
                  "height": info.height, "width": info.width, "channels": info.channels, "dtype": info.dtype,
                  "mode": protocol.mode, "nuclei": len(result["table"]),
                  "foreground_px": int(result["mask"].sum()), **state["meta"]}
        if self.out_dir is not None:
            paths = output_paths(self.out_dir, item.stem, opts)
            write_outputs(result, paths, img)
            for p in paths.values():
                self.wrote(p)
        else:
            record["result"] = {**result, "protocol": protocol}
        record["seconds"] = round(time.perf_counter() - state["t0"], 4)
        return record


def _resize_maps(prob: np.ndarray, h: int, w: int) -> np.ndarray:
    """(S, S) or (C, S, S) maps to the image's size (bilinear), as contiguous float32."""
    if prob.ndim == 2:
        if prob.shape == (h, w):
            return np.ascontiguousarray(prob)
        return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.stack([_resize_maps(p, h, w) for p in prob])


TTA_VIEWS = 8  # the dihedral group of the square: 4 rotations, each also mirrored


def _view(x: np.ndarray, v: int) -> np.ndarray:
    """View v of (C, H, W) maps: rotate by 90 * (v % 4) degrees, then mirror left-right when v >= 4."""
    y = np.rot90(x, v % 4, axes=(1, 2))
    return y[:, :, ::-1] if v >= 4 else y


def _unview(x: np.ndarray, v: int) -> np.ndarray:
    y = x[:, :, ::-1] if v >= 4 else x
    return np.rot90(y, -(v % 4), axes=(1, 2))


def with_tta(chunks: Iterator[np.ndarray], state: dict[str, Any]) -> Iterator[np.ndarray]:
    """Each unit becomes its 8 views (consecutive units); accept() averages them back (tta_collect)."""
    state["tta"] = {}
    for chunk in chunks:
        views = [_view(u, v) for u in chunk for v in range(TTA_VIEWS)]
        if all(v.shape == views[0].shape for v in views):
            yield np.ascontiguousarray(np.stack(views))
        else:  # a non-square window (a free-size model): its quarter turns have the other shape; in order, one by one
            for v in views:
                yield np.ascontiguousarray(v[None])


def tta_collect(acc: dict[int, list], start: int, probs: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Fold outputs of views start.. back into their tiles; yield (tile, mean of its 8 views) once complete."""
    for i, p in enumerate(probs, start):
        tile, view = divmod(i, TTA_VIEWS)
        entry = acc.setdefault(tile, [np.zeros_like(p), 0])
        entry[0] += _unview(p, view)
        entry[1] += 1
        if entry[1] == TTA_VIEWS:
            del acc[tile]
            yield tile, entry[0] / np.float32(TTA_VIEWS)


def model_protocol(runtime: Any) -> PredictProtocol:
    """The model's own predict protocol, from what its file says (its metadata and output channels)."""
    return PredictProtocol.of_model(runtime.metadata, runtime.outputs)


def resolve_mode(options: PredictOptions, model_meta: dict[str, Any] | None) -> PredictOptions:
    """`--mode auto` as the mode that runs: tile for a model that states the scale it was trained at (the instance
    model: its input is a nucleus-normalised crop, never a whole squeezed image), else resize (the guide's)."""
    if options.mode != "auto":
        return options
    return dataclasses.replace(options, mode=PredictProtocol.of_model(model_meta, ("foreground",)).mode)


def uses_guide_first_pass(runtime: Any, options: PredictOptions) -> bool:
    """Whether predict measures nuclei with the guide model first (first_pass_copy): the `nuclei` scale rule in
    tile mode, for a model with a border channel."""
    return model_protocol(runtime).apply(options).first_pass == "guide"


def first_pass_copy(runtime: Any, options: PredictOptions) -> Any:
    """The runtime for the `nuclei` rule's first pass (None when the rule does not need one): the model's own
    inactive twin, or for a model with a border channel the shipped guide model, whose 96x96 resize pass
    estimates nucleus size far better than the instance model at scale 1 (59 vs 41 of 64 held-out train images
    within 25 % of the true scale: bench/results/instance_training.md)."""
    first = model_protocol(runtime).apply(options).first_pass
    if first == "guide":
        from unetpp.runtimes import open_runtime

        # one thread: a 96x96 call in the prepare thread, while the model's own runtime holds the cores (two
        # thread pools on the same cores would spin against each other). The default runtime brings its own int8
        # build of the guide model (compile/first_pass.py); otherwise the shipped one.
        return open_runtime(getattr(runtime, "first_pass_model", None) or "guide", threads=1)
    return runtime.inactive_copy() if first == "self" else None


def work_kwargs(runtime: Any, options: PredictOptions) -> dict[str, Any]:
    """What predict's work takes from an active runtime, as the runtime states it: preprocessing, input size,
    output channels and kind, and the model's own protocol (scale rule, windows, post-processing)."""
    return {"cfg": runtime.preprocess, "first_pass_runtime": first_pass_copy(runtime, options),
            "outputs_meaning": runtime.outputs, "normalizer": runtime.image_normalizer(),
            "logits": runtime.outputs_are_logits, "input_shape": tuple(runtime.input_shape),
            "model_meta": runtime.metadata or {}, "size_step": getattr(runtime, "size_step", None),
            "protocol": model_protocol(runtime),
            "rescale_runtime": runtime.inactive_copy() if uses_guide_first_pass(runtime, options) else None}


def work_for(runtime: Any, options: PredictOptions, out_dir: Path | None = None,
             previous: dict[str, dict[str, Any]] | None = None) -> PredictWork:
    """The work for an active runtime (see work_kwargs), `--mode auto` resolved for its model."""
    options = resolve_mode(options, runtime.metadata)
    return PredictWork(options, out_dir=out_dir, previous=previous, **work_kwargs(runtime, options))
