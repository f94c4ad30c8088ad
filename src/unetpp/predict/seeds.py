"""Foreground + border probabilities -> nuclei: seeds inside the bodies, grown by a marker-controlled watershed.

labels_from_body_border(fg_prob, border_prob, params):
1. foreground = fg_prob > t_fg (`t_grow`, when set lower, gives the extent the seeds grow into and the
   unseeded pieces: outlines reach further out than the confident core);
2. seeds = 4-connected components of foreground & (border_prob < t_border), those smaller than `min_seed_area`
   pixels dropped (a border band separates touching nuclei, so each body is one seed);
3. the seeds are grown over the foreground by skimage's watershed: on border_prob (`flood="border"`, the cut
   follows the predicted border ridge) or on -distance to the background (`flood="distance"`);
4. foreground components that hold no seed are kept as nuclei of their own (`keep_unseeded`);
5. nuclei smaller than `min_area` pixels are removed, and those whose mean foreground probability is below
   `min_mean_fg` (0: off; confident nuclei against the faint fragments a bright-field cell outline leaves);
   holes inside each nucleus are filled;
6. ids are renumbered 1..n in raster order.
Areas are in pixels of the arrays given (the model-input scale when the model runs at its normalised scale).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from unetpp.errors import InputError, expected_found

FLOODS = ("border", "distance")
_FOUR = ndi.generate_binary_structure(2, 1)
_EIGHT = np.ones((3, 3), bool)


@dataclass(frozen=True)
class SeedParams:
    """Post-processing parameters. Defaults: the best DSB2018 mAP found on the 64 held-out train ids at full
    resolution, scale from the guide's first pass, with the shipped instance model (phase 2, epoch 12;
    bench/results/instance_training.md): 0.5255 against 0.5180 with the previous defaults (t_fg 0.7, no
    min_mean_fg). The landscape is flat but for min_mean_fg, which helps up to 0.9 and falls off a cliff above 0.93
    (0.96: 0.345). Areas are in model-input pixels (median nucleus 150)."""

    t_fg: float = 0.65
    t_border: float = 0.15
    min_seed_area: int = 9
    min_area: int = 16
    flood: str = "border"
    keep_unseeded: bool = True
    fill_holes: bool = True
    min_mean_fg: float = 0.9
    t_grow: float | None = None  # None: t_fg

    def __post_init__(self) -> None:
        if self.flood not in FLOODS:
            raise InputError(expected_found("seed flood surface", " or ".join(FLOODS), repr(self.flood)))
        for name in ("t_fg", "t_border", "min_mean_fg", "t_grow"):
            v = getattr(self, name)
            if v is None:
                continue
            if not 0.0 <= v <= 1.0:
                raise InputError(expected_found(f"seed parameter {name}", "a probability in [0, 1]", v))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeedParams:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def at_scale(self, scale: float | None) -> SeedParams:
        """These parameters for maps at the image's size when the model ran at `scale`: the areas, given in
        model-input pixels, become image pixels (x 1/scale^2, at least 1)."""
        if not scale:
            return self
        f = 1.0 / (scale * scale)
        return replace(self, min_seed_area=max(1, round(self.min_seed_area * f)),
                       min_area=max(1, round(self.min_area * f)))


def _raster_relabel(labels: np.ndarray) -> np.ndarray:
    flat = labels.ravel()
    ids, first = np.unique(flat, return_index=True)
    keep = ids != 0
    ids, first = ids[keep], first[keep]
    lut = np.zeros(int(labels.max()) + 1 if labels.size else 1, np.int32)
    lut[ids[np.argsort(first)]] = np.arange(1, ids.size + 1, dtype=np.int32)
    return lut[labels]


def _fill_holes(labels: np.ndarray) -> np.ndarray:
    """Each nucleus's holes (background its own pixels enclose) become its own. Only a nucleus whose box holds
    background cut off from the image's edge can have one, so the others are not looked at (the same result as
    filling every nucleus, at a fraction of the cost)."""
    background = labels == 0
    pockets, n = ndi.label(background, structure=_FOUR)
    if n == 0:
        return labels
    edge = np.unique(np.concatenate([pockets[0], pockets[-1], pockets[:, 0], pockets[:, -1]]))
    enclosed_ids = np.ones(n + 1, bool)
    enclosed_ids[edge] = False
    enclosed_ids[0] = False
    if not enclosed_ids.any():
        return labels
    enclosed = enclosed_ids[pockets]
    out = labels.copy()
    for k, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None or not enclosed[box].any():
            continue
        sub = labels[box] == k
        filled = ndi.binary_fill_holes(sub) & (labels[box] == 0)
        out[box][filled] = k
    return out


def labels_from_body_border(fg_prob: np.ndarray, border_prob: np.ndarray,
                            params: SeedParams | None = None) -> np.ndarray:
    """int32 (H, W) nucleus ids (0 background) from foreground and border probabilities (see the module doc)."""
    p = params or SeedParams()
    fg_prob, border_prob = np.asarray(fg_prob, np.float32), np.asarray(border_prob, np.float32)
    if fg_prob.ndim != 2 or fg_prob.shape != border_prob.shape:
        raise InputError(expected_found("foreground and border probabilities", "two 2-D arrays of one size",
                                        f"shapes {fg_prob.shape} and {border_prob.shape}"))
    return filter_nuclei(grow_nuclei(fg_prob, border_prob, p), fg_prob, p)


GROWTH_FIELDS = ("t_fg", "t_border", "min_seed_area", "flood", "keep_unseeded", "t_grow")


def grow_nuclei(fg_prob: np.ndarray, border_prob: np.ndarray, p: SeedParams) -> np.ndarray:
    """Steps 1-4 of the module doc: the nuclei before any is dropped (they depend on GROWTH_FIELDS only)."""
    from skimage.segmentation import watershed

    core = fg_prob > p.t_fg
    fg = core if p.t_grow is None or p.t_grow >= p.t_fg else fg_prob > p.t_grow
    if not fg.any():
        return np.zeros(fg.shape, np.int32)
    seeds, n = ndi.label(core & (border_prob < p.t_border), structure=_FOUR)
    if n and p.min_seed_area > 1:
        areas = np.bincount(seeds.ravel(), minlength=n + 1)
        small = areas < p.min_seed_area
        small[0] = True
        seeds[small[seeds]] = 0
    surface = border_prob if p.flood == "border" else -ndi.distance_transform_edt(fg).astype(np.float32)
    labels = watershed(surface, seeds, mask=fg).astype(np.int32) if seeds.any() else np.zeros(fg.shape, np.int32)
    if p.keep_unseeded:
        rest, m = ndi.label(fg & (labels == 0), structure=_EIGHT)
        if m:
            labels = np.where(rest > 0, rest + labels.max(), labels).astype(np.int32)
    return labels


def nucleus_stats(grown: np.ndarray, fg_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(area, sum of foreground probability) of each id of grow_nuclei's output (index = id)."""
    flat = grown.ravel()
    areas = np.bincount(flat)
    return areas, np.bincount(flat, weights=fg_prob.ravel(), minlength=areas.size)


def kept_ids(areas: np.ndarray, sums: np.ndarray, p: SeedParams) -> np.ndarray:
    """Step 5's choice per id (True: kept): not smaller than min_area, mean foreground not below min_mean_fg."""
    keep = np.ones(areas.size, bool)
    if p.min_area > 1:
        keep &= areas >= p.min_area
    if p.min_mean_fg > 0:
        keep &= ~(sums < p.min_mean_fg * areas)  # mean < min_mean_fg
    return keep


def filter_nuclei(grown: np.ndarray, fg_prob: np.ndarray, p: SeedParams) -> np.ndarray:
    """Steps 5-6 of the module doc on grow_nuclei's output (left unchanged): small and faint nuclei dropped,
    holes filled, ids renumbered."""
    if grown.max(initial=0) == 0:
        return grown.copy()
    keep = kept_ids(*nucleus_stats(grown, fg_prob), p)
    keep[0] = True
    labels = np.where(keep[grown], grown, 0).astype(np.int32)
    if p.fill_holes and labels.max() > 0:
        labels = _fill_holes(labels)
    return _raster_relabel(labels) if labels.max() > 0 else labels
