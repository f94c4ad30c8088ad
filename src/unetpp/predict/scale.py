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
