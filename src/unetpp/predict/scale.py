"""How much to rescale an image before tiling, so nuclei appear at a size the model segments well.

Training squeezed every DSB2018 image to 96x96, so the scale the model saw was 96/H by 96/W: 0.375 for a 256x256
image, about 0.09 for a 1024x1024 one. The rules (`--scale`):
- `fit`       s = 96 / min(H, W): the training scale of the short side (a square image tiles as one window);
- `area`      s = 96 / sqrt(H * W): the training scale by area;
- `nuclei@A`  two passes: a resize-mode pass estimates the median nucleus area M (original pixels), then
              s = sqrt(A / M), so the median nucleus covers A pixels at the model's input (falls back to `area`
              when the first pass finds no nucleus); plain `nuclei` uses A = NUCLEUS_TARGET_AREA;
- a number:   that fixed factor (1.0 = native resolution);
- `auto`      = AUTO_RULE, chosen by measurement on train ids only (bench/results/tile_scale_choice.md): `fit`.
  Mean full-resolution pixel IoU on 100 train ids / on 100 other train ids: fit 0.830 / 0.818, resize mode
  0.827 / 0.814, nuclei@90 0.837 / 0.811, nuclei at the training median (15.8 px) 0.797 / -, area 0.826 / -.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from unetpp.errors import InputError, expected_found

RULES = ("fit", "area", "nuclei")
AUTO_RULE = "fit"  # bench/results/tile_scale_choice.md: best mean pixel IoU, confirmed on disjoint train ids
# Median area in pixels of a training nucleus after the 96x96 resize: pooled over the 23,763 nuclei of the 536
# train ids, quartiles 9.2 / 30.1 (bench/tile_scale.py, "train_stats"; the median of per-image medians is 23.9).
TRAIN_MEDIAN_AREA_96 = 15.76
# The `nuclei` rule's default target: the best of 15.8 .. 200 px on the first 100 train ids (not better than `fit` on
# the next 100: see the measurement). Nuclei larger than the training median are segmented better.
NUCLEUS_TARGET_AREA = 90.0
SCALE_RANGE = (0.02, 4.0)


def parse_scale(text: str | float) -> str | float:
    """'auto', a rule name, 'nuclei@AREA' (the `nuclei` rule with another target area), or a positive number."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        t = str(text).strip().lower()
        if t == "auto":  # resolved per model: its own rule (metadata) or AUTO_RULE
            return "auto"
        if t in RULES:
            return t
        if t.startswith("nuclei@"):
            return f"nuclei@{nuclei_target(t):g}"
        try:
            value = float(t)
        except ValueError:
            raise InputError(expected_found("--scale", "auto, " + ", ".join(RULES) + ", nuclei@AREA or a positive "
                                            "number", repr(text))) from None
    if not (SCALE_RANGE[0] <= value <= SCALE_RANGE[1]) or math.isnan(value):
        raise InputError(expected_found("--scale", f"a factor in [{SCALE_RANGE[0]}, {SCALE_RANGE[1]}]", value))
    return value


def nuclei_target(rule: str) -> float:
    """The target median nucleus area (pixels at the model's input) of `nuclei` or `nuclei@AREA`."""
    if rule == "nuclei":
        return NUCLEUS_TARGET_AREA
    try:
        area = float(rule.split("@", 1)[1])
    except (IndexError, ValueError):
        area = float("nan")
    if not area > 0:
        raise InputError(expected_found("--scale nuclei@AREA", "a positive area in pixels", repr(rule)))
    return area


def clamp(s: float) -> float:
    return float(min(max(s, SCALE_RANGE[0]), SCALE_RANGE[1]))


def geometric_scale(rule: str, height: int, width: int, tile: int = 96) -> float:
    if rule == "fit":
        return clamp(tile / min(height, width))
    if rule == "area":
        return clamp(tile / math.sqrt(height * width))
    raise InputError(expected_found("geometric scale rule", "fit or area", repr(rule)))


def nuclei_scale(median_area: float | None, height: int, width: int, tile: int = 96,
                 target_area: float | None = None) -> float:
    """sqrt(target / median area), or the `area` rule when no nucleus was found."""
    if not median_area or median_area <= 0:
        return geometric_scale("area", height, width, tile)
    return clamp(math.sqrt((target_area or NUCLEUS_TARGET_AREA) / median_area))


# -- the instance model's own check of the scale (`agree`) ---------------------------------------------------------
# The guide's first pass can measure nuclei many times too small or large (H&E camera fields: 2-30x). The instance
# model's own nuclei tell: at the right scale their median area at the model's input is the target it was trained
# at. When they are larger than that by more than AGREE_FACTOR (in area), predict segments again at the scale its
# own nuclei ask for (after a pass that finds no nucleus, a ladder rung instead: nuclei many times larger than the
# training ones are not found at all), up to MAX_PASSES passes in all, and keeps the pass whose nuclei are closest
# to the target.
AGREE_FACTOR = 1.5
MAX_PASSES = 3
MIN_AGREE_NUCLEI = 3  # fewer nuclei than this say nothing about the scale
SAME_SCALE = 1.1  # a correction within this factor of a scale already tried is not tried
LADDER_STEP = 2.0  # no nucleus found: the next pass tries the first scale / 2, then x 2
# Fragments: an image enlarged too much shows the model pieces of nuclei that look the trained size at its input
# (TNBC H&E tiles at 1.6-2.6x: 10-45 px pieces of 400-770 px nuclei). Where the kept pass enlarged the image
# (scale > FRAGMENT_CHECK_ABOVE), one check pass at half its scale tells: whole nuclei keep their size in the
# image's own pixels, pieces merge into nuclei FRAGMENT_RATIO or more times larger. DSB2018 nuclei at half the
# scale measure 1.2-2.4x larger (the model's outlines at a quarter of the trained area): 2.5 changes no image of
# the selection set and changes 8 of the 50 TNBC tiles (bench/results/scale_agreement.md).
FRAGMENT_CHECK_ABOVE = 1.0
FRAGMENT_RATIO = 2.5


@dataclass(frozen=True)
class Pass:
    """One segmentation of an image: the scale it ran at and its nuclei (their count and median area in the
    image's own pixels)."""

    scale: float
    n_nuclei: int
    median_area: float | None

    @classmethod
    def of(cls, scale: float, areas: np.ndarray) -> Pass:
        a = np.asarray(areas, np.float64)
        a = a[a > 0]
        return cls(float(scale), int(a.size), float(np.median(a)) if a.size else None)

    @property
    def input_area(self) -> float | None:
        """The median nucleus's area at the model's input."""
        return None if self.median_area is None else self.median_area * self.scale * self.scale

    def to_dict(self) -> dict[str, Any]:
        return {"scale": round(self.scale, 6), "nuclei": self.n_nuclei, "median_area": self.median_area,
                "input_area": self.input_area}


def _off_by(p: Pass, target: float) -> float:
    return abs(math.log(p.input_area / target)) if p.input_area else math.inf


def corrected_scale(p: Pass, target: float, factor: float | None = None) -> float | None:
    """The smaller scale at which this pass's median nucleus would cover `target` pixels at the model's input,
    when it is more than `factor` times larger (None: it agrees, or too few nuclei to tell). Nuclei that look too
    small are not trusted to scale up: at too large a scale the model finds fragments of large nuclei (TNBC H&E
    tiles upscaled 1.9-2.6x: fragments of 10-40 px for nuclei of 480-770 px), which would ask for larger still."""
    factor = AGREE_FACTOR if factor is None else factor
    if p.n_nuclei < MIN_AGREE_NUCLEI or p.input_area <= target * factor:
        return None
    return clamp(math.sqrt(target / p.median_area))


def _next_scale(passes: list[Pass], target: float, factor: float) -> float | None:
    """A correction from the last pass; when no pass found any nucleus, a rung of the ladder instead (nuclei far
    larger than the model was trained on are not found at all: first LADDER_STEP smaller, then larger)."""
    last = passes[-1]
    if last.n_nuclei > 0:
        return corrected_scale(last, target, factor)
    if any(p.n_nuclei > 0 for p in passes):
        return None
    for s in (passes[0].scale / LADDER_STEP, passes[0].scale * LADDER_STEP):
        if all(abs(math.log(s / p.scale)) >= math.log(SAME_SCALE) for p in passes):
            return clamp(s)
    return None


def agree(first: Pass, segment_at: Callable[[float], Pass], target: float, factor: float | None = None,
          max_passes: int | None = None) -> tuple[int, list[Pass]]:
    """(index of the pass to keep, every pass): `first` (the pass at the first estimate's scale), then passes
    at corrected scales (`segment_at(scale)`) while the last one disagrees, up to `max_passes` in all; kept: the
    pass with at least MIN_AGREE_NUCLEI nuclei closest (in log area at the input) to the target (the first when
    none has enough). Where that pass enlarged the image, the fragment check (`_fragment_check`); when it finds
    pieces of nuclei, its half-scale pass is kept or corrected downwards like the first, and no pass at the
    pieces' scale or larger is kept. `factor` and `max_passes` default to AGREE_FACTOR and MAX_PASSES (read at
    each call). A check pass that finds no pieces is recorded but never kept."""
    factor = AGREE_FACTOR if factor is None else factor
    max_passes = MAX_PASSES if max_passes is None else max_passes
    passes = [first]
    _correct(passes, segment_at, target, factor, max_passes)
    best = _closest(passes, target, range(len(passes)))
    half = _fragment_check(passes[best], segment_at)
    if half is None:
        return best, passes
    passes.append(half)
    if not _pieces(passes[best], half):
        return best, passes
    pieces = passes[best].scale  # passes at this scale or larger saw pieces of nuclei
    _correct(passes, segment_at, target, factor, len(passes) + 1)
    whole = [i for i, p in enumerate(passes) if p.scale < pieces]
    return _closest(passes, target, whole), passes


def _correct(passes: list[Pass], segment_at: Callable[[float], Pass], target: float, factor: float,
             max_passes: int) -> None:
    """Passes at corrected scales (or ladder rungs) while the last one disagrees, up to max_passes in all."""
    while len(passes) < max_passes:
        s = _next_scale(passes, target, factor)
        if s is None or any(abs(math.log(s / p.scale)) < math.log(SAME_SCALE) for p in passes):
            break
        passes.append(segment_at(s))


def _closest(passes: list[Pass], target: float, among: Iterable[int]) -> int:
    """Of the passes `among` with at least MIN_AGREE_NUCLEI nuclei, the one closest to the target (else the
    first of `among`)."""
    among = list(among)
    counted = [i for i in among if passes[i].n_nuclei >= MIN_AGREE_NUCLEI]
    return min(counted, key=lambda i: _off_by(passes[i], target)) if counted else among[0]


def _fragment_check(kept: Pass, segment_at: Callable[[float], Pass]) -> Pass | None:
    """The check pass at half the kept scale where the kept pass enlarged the image and found nuclei; else None."""
    if kept.scale <= FRAGMENT_CHECK_ABOVE or not kept.median_area:
        return None
    return segment_at(clamp(kept.scale / 2))


def _pieces(kept: Pass, half: Pass) -> bool:
    """Whether the half-scale pass finds nuclei FRAGMENT_RATIO or more times larger in the image's pixels than the
    kept pass (which then saw pieces of nuclei)."""
    return half.n_nuclei >= MIN_AGREE_NUCLEI and half.median_area >= FRAGMENT_RATIO * kept.median_area
