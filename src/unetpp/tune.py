"""Tuning a model's post-processing on the path users run, and writing the choice into the model's metadata.

1. `keep_outputs(model, images, truths)`: the real predict pipeline runs once over the images (`Model.predict_many`
   of `unetpp.load()`, whatever runtime it opened, the default int8 one included), and each image's raw outputs are
   kept: the foreground and border probabilities at the image's size, and the scale predict ran it at.
2. `grid_scores(kept, grid, base)`: every point of a grid over the seeds post-processing (predict/seeds.py
   SeedParams) is applied to the kept outputs exactly as predict applies the model's own setting
   (SeedParams.at_scale, then predict/seeds.py's stages: the watershed grown once per image and growth setting,
   the filters' choice of nuclei per point, from one joint histogram with the truth) and scored against the true
   nuclei (DSB2018 mAP, counts), image by image.
3. `choose(scores, folds)`: objective = mAP - COUNT_WEIGHT x count miss, where count miss = sum over images of
   |predicted - true nuclei| / all true nuclei: each image's count is judged on its own, so phantoms on one image
   cannot make up for nuclei missed on another (a pooled signed error let them: bench/results/phantoms.md);
   each grid point is rated by the mean objective of itself and its neighbours (one step along one parameter): a
   flat setting beats a sharp one.
   The spread is reported across stratified folds twice: the chosen setting's objective on each fold, and the
   choice made on the other folds scored on each (cross-validated: what a fresh image set should expect).
4. `write_choice(checkpoint, choice, out)`: the chosen parameters become the checkpoint's `seed_params` (the old
   ones kept as `seed_params_previous`), with what they were chosen on; the weights are written back unchanged.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.errors import InputError, expected_found
from unetpp.eval.instance_metrics import InstanceScore, joint_histogram, score_from_iou
from unetpp.eval.modality import MODALITIES, modality
from unetpp.predict.image import postprocess
from unetpp.predict.protocol import SeedPost
from unetpp.predict.seeds import GROWTH_FIELDS, SeedParams, _fill_holes, grow_nuclei, kept_ids, nucleus_stats

COUNT_WEIGHT = 0.25  # a setting that miscounts a tenth of the nuclei pays 0.025 mAP
FOLDS = 4
# The shipped instance model's grid (bench/instance_select.py's, areas in model-input pixels).
GRID: dict[str, list[Any]] = {
    "t_fg": [0.5, 0.6, 0.7],
    "t_border": [0.1, 0.15, 0.25, 0.35, 0.45, 0.55],
    "min_mean_fg": [0.0, 0.6, 0.75, 0.85, 0.9],
    "min_area": [8, 16, 32],
}
OUTPUTS = ["foreground", "border"]


@dataclass
class Kept:
    """One image's outputs as predict produced them: maps (C, H, W) float32 at the image's size (foreground,
    border), the scale predict ran it at, its true nucleus ids and its modality."""

    id: str
    maps: np.ndarray
    scale: float | None
    truth: np.ndarray
    modality: str
    meta: dict[str, Any]


def keep_outputs(model: Any, images: Sequence[np.ndarray], truths: Sequence[np.ndarray], ids: Sequence[str],
                 chunk: int = 16, **options: Any) -> list[Kept]:
    """Run `model.predict_many` (a unetpp.api.Model: the product's pipeline and runtime) over BGR uint8 images,
    `chunk` at a time, keeping each image's probability maps (its `info["maps"]`)."""
    if not len(images) == len(truths) == len(ids):
        raise InputError(expected_found("images, truths and ids", "three sequences of one length",
                                        f"{len(images)}, {len(truths)} and {len(ids)}"))
    outputs = list(getattr(getattr(model, "runtime", None), "outputs", OUTPUTS))
    if outputs != OUTPUTS:
        raise InputError(expected_found("the model's outputs", " + ".join(OUTPUTS), " + ".join(outputs),
                                        "tuning grids the seeds post-processing of an instance model"))
    kept: list[Kept] = []
    for start in range(0, len(images), chunk):
        batch = list(images[start:start + chunk])
        for k, (_, info) in enumerate(model.predict_many(batch, channel_order="bgr", **options)):
            i = start + k
            truth = np.asarray(truths[i])
            maps = np.asarray(info["maps"], np.float32)
            if maps.shape[1:] != truth.shape:
                raise InputError(expected_found(f"true labels of {ids[i]}", f"the image's size {maps.shape[1:]}",
                                                truth.shape))
            meta = {k: v for k, v in info["meta"].items() if isinstance(v, (int, float, str, type(None)))}
            kept.append(Kept(ids[i], maps, info["meta"].get("scale"), truth.astype(np.int32), modality(batch[k]),
                             meta))
    return kept


def read_dsb2018(root: str | Path, ids: Sequence[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The images (BGR uint8, as `unetpp predict` reads them) and true nucleus ids of DSB2018 stage1_train ids."""
    from unetpp.data.prepare import sample_image_path
    from unetpp.eval.instance_io import load_gt_instances
    from unetpp.predict.imageio import read_image

    stage1 = Path(root) / "stage1_train"
    images = [read_image(sample_image_path(stage1, i))[0] for i in ids]
    return images, [load_gt_instances(stage1, i).astype(np.int32) for i in ids]


def labels_for(item: Kept, params: SeedParams | Mapping[str, Any]) -> np.ndarray:
    """The nucleus ids predict would output for this image with these seed parameters."""
    seed = params if isinstance(params, SeedParams) else SeedParams.from_dict(dict(params))
    return postprocess(item.maps, SeedPost(seed), OUTPUTS, item.scale)["labels"]


def grid_points(grid: Mapping[str, Sequence[Any]], base: SeedParams) -> list[SeedParams]:
    """Every combination of the grid's values over `base`, the last parameter varying fastest."""
    keys = list(grid)
    return [SeedParams(**{**base.to_dict(), **dict(zip(keys, values))})
            for values in itertools.product(*(grid[k] for k in keys))]


class _Grown:
    """One image's nuclei before the filters, with what every filter setting's score needs: each id's area and
    foreground sum (seeds.kept_ids decides from them, as predict does) and the joint histogram of the hole-filled
    nuclei with the truth (a kept nucleus's IoU does not depend on the others; exact but where a dropped nucleus
    lay in a kept one's hole, which predict would then fill)."""

    def __init__(self, grown: np.ndarray, fg: np.ndarray, truth: np.ndarray, fill: bool) -> None:
        self.areas, self.sums = nucleus_stats(grown, fg)
        filled = _fill_holes(grown) if fill and grown.max(initial=0) > 0 else grown
        self.hist = joint_histogram(filled, truth).astype(np.float64)
        present = np.bincount(filled.ravel(), minlength=self.areas.size)
        self.ids = np.flatnonzero(present)
        self.ids = self.ids[self.ids > 0]  # the histogram's rows 1.. in id order

    def score(self, at: SeedParams) -> InstanceScore:
        rows = kept_ids(self.areas, self.sums, at)[self.ids]
        inter = self.hist[1:, 1:][rows]
        area_p = self.hist[1:, :][rows].sum(axis=1)
        area_t = self.hist[:, 1:].sum(axis=0)
        return score_from_iou(inter / np.maximum(area_p[:, None] + area_t[None, :] - inter, 1))


@dataclass
class GridScores:
    """Per grid point (axis 0) and image (axis 1): mAP, AP@0.5, predicted and true nucleus counts, and
    predicted nuclei matching no true one at IoU 0.5 (false positives, the phantoms among them)."""

    grid: dict[str, list[Any]]
    base: SeedParams
    ids: list[str]
    modalities: list[str]
    ap: np.ndarray
    ap50: np.ndarray
    n_pred: np.ndarray
    n_true: np.ndarray
    fp50: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.grid.values())

    def params(self, flat_index: int) -> SeedParams:
        idx = np.unravel_index(flat_index, self.shape)
        return SeedParams(**{**self.base.to_dict(),
                             **{k: v[int(i)] for (k, v), i in zip(self.grid.items(), idx)}})


def _image_stats(item: Kept, points: Sequence[SeedParams]) -> np.ndarray:
    """(5, points) for one image: mAP, AP@0.5, predicted and true counts, false positives at IoU 0.5."""
    fg, border = item.maps[0], item.maps[1]
    out = np.zeros((5, len(points)))
    grown: dict[tuple, _Grown] = {}  # the watershed depends on GROWTH_FIELDS only: once per value set
    for i, p in enumerate(points):
        at = p.at_scale(item.scale)  # as predict.image.postprocess applies it
        key = tuple(getattr(at, f) for f in GROWTH_FIELDS) + (at.fill_holes,)
        if key not in grown:
            grown[key] = _Grown(grow_nuclei(fg, border, at), fg, item.truth, at.fill_holes)
        sc = grown[key].score(at)
        out[:, i] = (sc.ap, sc.at(0.5), sc.n_pred, sc.n_true, sc.fp[0])
    return out


def grid_scores(kept: Sequence[Kept], grid: Mapping[str, Sequence[Any]] | None = None,
                base: SeedParams | None = None, workers: int = 1) -> GridScores:
    """Every grid point scored on every kept image (`workers` processes share the images)."""
    grid = {k: list(v) for k, v in (grid or GRID).items()}
    unknown = set(grid) - set(SeedParams.__dataclass_fields__)
    if unknown or any(len(v) == 0 for v in grid.values()):
        raise InputError(expected_found("tuning grid", "non-empty value lists of SeedParams fields",
                                        ", ".join(sorted(unknown)) or "an empty list"))
    base = base or SeedParams()
    points = grid_points(grid, base)
    if workers > 1 and len(kept) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as ex:
            columns = list(ex.map(_image_stats, kept, [points] * len(kept), chunksize=4))
    else:
        columns = [_image_stats(item, points) for item in kept]
    stats = np.stack(columns, axis=-1) if columns else np.zeros((5, len(points), 0))
    return GridScores(grid, base, [k.id for k in kept], [k.modality for k in kept], *stats)


def summary(scores: GridScores, point: int | np.ndarray, images: np.ndarray | None = None) -> dict[str, Any]:
    """Objective, mAP, AP@0.5, counts, count error (pooled, signed) and count miss (per image, unsigned) of one
    grid point (or, for an array of points, the objective of each) over the given images (a boolean mask; all by
    default)."""
    sel = np.ones(len(scores.ids), bool) if images is None else np.asarray(images, bool)
    pred, true = scores.n_pred[point][..., sel], scores.n_true[point][..., sel]
    n_pred, n_true = pred.sum(-1), true.sum(-1)
    m = scores.ap[point][..., sel].mean(-1)
    count_error = n_pred / np.maximum(n_true, 1) - 1.0  # pooled, signed: what the report shows
    count_miss = np.abs(pred - true).sum(-1) / np.maximum(n_true, 1)  # per image, unsigned: what is penalised
    objective = m - COUNT_WEIGHT * count_miss
    if np.ndim(point):
        return {"objective": objective}
    return {"objective": float(objective), "map": float(m), "ap50": float(scores.ap50[point][sel].mean()),
            "n_pred": int(n_pred), "n_true": int(n_true), "count_error": float(count_error),
            "count_miss": float(count_miss),
            "false_positives_iou50": int(scores.fp50[point][sel].sum()), "images": int(sel.sum())}


def neighbour_rating(objective: np.ndarray) -> np.ndarray:
    """Each point's mean objective over itself and its neighbours one step along one axis (edges: fewer)."""
    total, count = objective.astype(np.float64).copy(), np.ones(objective.shape)
    for axis in range(objective.ndim):
        for step in (-1, 1):
            shifted, valid = np.zeros(objective.shape), np.zeros(objective.shape)
            src = [slice(None)] * objective.ndim
            dst = [slice(None)] * objective.ndim
            if step == 1:
                src[axis], dst[axis] = slice(1, None), slice(None, -1)
            else:
                src[axis], dst[axis] = slice(None, -1), slice(1, None)
            shifted[tuple(dst)], valid[tuple(dst)] = objective[tuple(src)], 1.0
            total += shifted
            count += valid
    return total / count


def stratified_folds(ids: Sequence[str], modalities: Sequence[str], k: int = FOLDS) -> list[np.ndarray]:
    """k boolean masks over the images, each holding every modality in proportion (round-robin within a
    modality, in the order given)."""
    fold_of = np.zeros(len(ids), int)
    for m in sorted(set(modalities), key=lambda m: (MODALITIES + (m,)).index(m)):
        for n, i in enumerate(i for i, mm in enumerate(modalities) if mm == m):
            fold_of[i] = n % k
    return [fold_of == f for f in range(k)]


def pick(scores: GridScores, images: np.ndarray | None = None) -> tuple[int, int]:
    """(flat choice, sharp optimum) as flat grid indices, chosen on the given images."""
    objective = summary(scores, np.arange(int(np.prod(scores.shape))), images)["objective"]
    rated = neighbour_rating(objective.reshape(scores.shape))
    return int(np.argmax(rated)), int(np.argmax(objective))


def point_of(scores: GridScores, params: SeedParams) -> int | None:
    """The flat grid index of a setting (None: not on the grid)."""
    for i in range(int(np.prod(scores.shape))):
        if scores.params(i) == params:
            return i
    return None


def choose(scores: GridScores, k: int = FOLDS, current: SeedParams | None = None) -> dict[str, Any]:
    """The flat choice over all images, with its figures per fold and per modality, the sharp optimum beside it,
    and a cross-validated spread (the choice made without each fold, scored on that fold). With `current` (the
    model's own setting, when on the grid): its rating and figures, and `better` = whether the choice's
    objective beats it (a choice that does not is not worth a change)."""
    folds = stratified_folds(scores.ids, scores.modalities, k)
    flat, sharp = pick(scores)
    objective = summary(scores, np.arange(int(np.prod(scores.shape))))["objective"]
    rated = neighbour_rating(objective.reshape(scores.shape)).ravel()
    per_fold = [summary(scores, flat, f) for f in folds]
    cross = []
    for f in folds if k > 1 else []:
        inner, _ = pick(scores, ~f)
        cross.append({"params": _changed(scores, inner), **summary(scores, inner, f)})
    mods = np.asarray(scores.modalities)
    return {
        "params": scores.params(flat).to_dict(), "rating": float(rated[flat]), "all": summary(scores, flat),
        "folds": per_fold, "fold_spread": {key: [min(f[key] for f in per_fold), max(f[key] for f in per_fold)]
                                           for key in ("objective", "map", "count_error")},
        "cross_validated": cross,
        "modality": {m: summary(scores, flat, mods == m) for m in MODALITIES if (mods == m).any()},
        "sharp": {"params": _changed(scores, sharp), "rating": float(rated[sharp]), **summary(scores, sharp)},
        "grid": scores.grid, "count_weight": COUNT_WEIGHT, "objective": objective.round(5).tolist(),
        **_against(scores, current, flat, rated),
    }


def _against(scores: GridScores, current: SeedParams | None, flat: int, rated: np.ndarray) -> dict[str, Any]:
    at = point_of(scores, current) if current is not None else None
    if at is None:
        return {}
    here = summary(scores, at)
    return {"current": {"rating": float(rated[at]), **here},
            "better": bool(summary(scores, flat)["objective"] > here["objective"])}


def _changed(scores: GridScores, point: int) -> dict[str, Any]:
    p = scores.params(point).to_dict()
    return {k: p[k] for k in scores.grid}


def score_setting(kept: Sequence[Kept], params: SeedParams, k: int = FOLDS) -> dict[str, Any]:
    """One setting's figures (e.g. the model's own) as `choose` reports the chosen one."""
    scores = grid_scores(kept, {"t_fg": [params.t_fg]}, params)
    folds = stratified_folds(scores.ids, scores.modalities, k)
    mods = np.asarray(scores.modalities)
    per_fold = [summary(scores, 0, f) for f in folds]
    return {"params": params.to_dict(), "all": summary(scores, 0), "folds": per_fold,
            "fold_spread": {key: [min(f[key] for f in per_fold), max(f[key] for f in per_fold)]
                            for key in ("objective", "map", "count_error")},
            "modality": {m: summary(scores, 0, mods == m) for m in MODALITIES if (mods == m).any()}}


def write_choice(checkpoint: str | Path, choice: Mapping[str, Any], out: str | Path | None = None,
                 chosen_on: Mapping[str, Any] | None = None) -> Path:
    """Write `choice["params"]` into the checkpoint's metadata as its `seed_params` (what predict applies), the
    previous setting as `seed_params_previous`, and `selection` (what it was chosen on, its figures and spread);
    the weights and everything else are written back unchanged, atomically, to `out` (default: in place)."""
    from unetpp.model.checkpoint import load_checkpoint, save_checkpoint

    params = SeedParams.from_dict(dict(choice["params"]))  # validates
    ck = load_checkpoint(checkpoint)
    meta = dict(ck.meta)
    if "border" not in (meta.get("outputs") or []):
        raise InputError(expected_found(f"checkpoint {checkpoint}", "an instance model (foreground + border "
                                        "outputs)", f"outputs {meta.get('outputs')}"))
    meta["seed_params_previous"] = meta.get("seed_params")
    meta["seed_params"] = params.to_dict()
    meta["selection"] = {**dict(chosen_on or {}), "chosen": choice.get("all"),
                         "fold_spread": choice.get("fold_spread"), "rating": choice.get("rating")}
    return save_checkpoint(Path(out or checkpoint), ck.model, ck.preprocess, meta=meta)
