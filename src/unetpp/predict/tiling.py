"""Sliding-window prediction with blended seams and bounded memory, and the choice of windows per image.

Windows of `tile` x `tile` pixels are generated lazily (a generator of corners), copied `batch` at a time into one
reused buffer, passed to a per-tile function, and accumulated as `sum(p * w)` and `sum(w)` into two float32 arrays
of the image's size; the result is their ratio. `w` is a separable raised-cosine (Hann) window with a floor, so a
pixel near a tile's border (where the network sees zero padding) counts less than one at a tile's centre, and
every pixel keeps a positive weight. Working memory beyond the O(H*W) image/accumulators is O(batch * tile^2),
whatever the number of tiles.

A model with free height/width (`size_step`) needs no 96x96 windows: `plan_windows` runs the whole (scaled) image,
padded to a multiple of the step, as one window when it has at most `max_pixels` pixels, else windows of up to
`large` px that overlap by 2 * `margin` and are *stitched*: each output pixel comes from the one window where it
lies furthest from an inner edge (at least `margin` px of real context on every side), so the result differs from
a single whole-image pass only by what the network sees beyond `margin` px (bench/predict_speed.py measures it).
A WindowPlan states its computed pixels: sum of window areas; over the scaled image's pixels that is the
computed-to-output ratio (96 windows at 25 % overlap: ~1.8 plus the padding of small images).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from unetpp.errors import InputError, expected_found

DEFAULT_OVERLAP = 0.25
DEFAULT_FLOOR = 0.05
# Windows for a model with free height/width: a whole image up to WHOLE_MAX_PIXELS (a bound on the runtime's
# activation memory, which grows with the window's area), else windows of up to LARGE_WINDOW px stitched with
# STITCH_MARGIN px of context kept on every inner side. The margin: on a real 400x560 val image in 256 px windows
# the largest probability difference to a whole-image pass was 0.28 / 0.22 / 0.17 at margins 32 / 48 / 64 (99.9th
# percentile 0.068 / 0.030 / 0.010): NestedUNet's receptive field reaches well beyond 64 px, its influence fades.
WHOLE_MAX_PIXELS = 1024 * 1024
LARGE_WINDOW = 512
STITCH_MARGIN = 64
BLENDS = ("hann", "stitch")


def window_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets covering [0, length): evenly spread, consecutive windows overlapping by >= `overlap` * tile."""
    if not 0.0 <= overlap < 1.0:
        raise InputError(expected_found("tile overlap", "a fraction in [0, 1)", overlap))
    if length <= tile:
        return [0]
    stride = max(1, int(math.floor(tile * (1.0 - overlap))))
    n = math.ceil((length - tile) / stride) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def iter_windows(height: int, width: int, tile: int, overlap: float) -> Iterator[tuple[int, int]]:
    """(y, x) corners, row by row; lazily, never a list of tiles."""
    xs = window_starts(width, tile, overlap)
    for y in window_starts(height, tile, overlap):
        for x in xs:
            yield y, x


def count_windows(height: int, width: int, tile: int, overlap: float) -> int:
    return len(window_starts(height, tile, overlap)) * len(window_starts(width, tile, overlap))


def blend_window(tile: int, floor: float = DEFAULT_FLOOR) -> np.ndarray:
    """Separable raised cosine: floor + (1 - floor) * sin^2(pi (i + 0.5) / tile), outer product; float32."""
    if not 0.0 < floor <= 1.0:
        raise InputError(expected_found("window floor", "a number in (0, 1]", floor))
    i = np.arange(tile, dtype=np.float64)
    w1 = floor + (1.0 - floor) * np.sin(np.pi * (i + 0.5) / tile) ** 2
    return np.outer(w1, w1).astype(np.float32)


def pad_to_tile(image: np.ndarray, tile: int) -> np.ndarray:
    """Mirror-pad the bottom/right so both sides are at least `tile` (a 1-pixel side is replicated)."""
    h, w = image.shape[:2]
    return pad_to(image, max(h, tile), max(w, tile))


def pad_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Mirror-pad the bottom/right to (at least) height x width (a 1-pixel side is replicated)."""
    h, w = image.shape[:2]
    ph, pw = max(0, height - h), max(0, width - w)
    if not ph and not pw:
        return image
    border = cv2.BORDER_REFLECT_101 if min(h, w) > 1 else cv2.BORDER_REPLICATE
    out = cv2.copyMakeBorder(image, 0, ph, 0, pw, border)
    return out if out.ndim == image.ndim else out[:, :, None]


@dataclass(frozen=True)
class WindowPlan:
    """The windows of one (scaled) image: the padded size they cover, their size, their corners, and how they are
    combined: `hann` (weighted blend, the 96x96 protocol) or `stitch` (each pixel from its most central window;
    one window covering the whole padded image is the single whole-image pass)."""

    image_h: int  # the scaled image, before padding
    image_w: int
    height: int  # the padded image the windows cover
    width: int
    win_h: int
    win_w: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    blend: str = "hann"

    @property
    def n_windows(self) -> int:
        return len(self.ys) * len(self.xs)

    @property
    def computed_pixels(self) -> int:
        """Pixels the network computes: the sum of the windows' areas."""
        return self.n_windows * self.win_h * self.win_w

    @property
    def output_pixels(self) -> int:
        return self.image_h * self.image_w

    @property
    def pixel_ratio(self) -> float:
        """Computed over output pixels (1.0: every pixel once, no padding)."""
        return self.computed_pixels / self.output_pixels

    def corner(self, i: int) -> tuple[int, int]:
        return self.ys[i // len(self.xs)], self.xs[i % len(self.xs)]

    def describe(self) -> dict[str, object]:
        return {"window": [self.win_h, self.win_w], "n_windows": self.n_windows, "blend": self.blend,
                "computed_px": self.computed_pixels, "output_px": self.output_pixels}


def hann_plan(height: int, width: int, tile: int, overlap: float = DEFAULT_OVERLAP) -> WindowPlan:
    """Today's protocol for a fixed-size model: tile x tile windows at `overlap`, the image mirror-padded to at
    least one tile."""
    ph, pw = max(height, tile), max(width, tile)
    return WindowPlan(height, width, ph, pw, tile, tile, tuple(window_starts(ph, tile, overlap)),
                      tuple(window_starts(pw, tile, overlap)), "hann")


def round_up(n: int, step: int) -> int:
    return max(step, -(-n // step) * step)


def stitched_axis(length: int, largest: int, margin: int, step: int) -> tuple[int, list[int]]:
    """(window length, starts) along one axis of `length` (a multiple of step): as few windows of at most
    `largest` px as cover it with >= 2 * margin px of overlap, each as short as that allows (fewest pixels), all
    starting on multiples of `step`."""
    if length <= largest:
        return length, [0]
    if margin % step or largest % step:
        raise InputError(expected_found("window size and stitch margin", f"multiples of {step}",
                                        f"{largest} and {margin}"))
    if largest <= 2 * margin:
        raise InputError(expected_found("window size", f"more than twice the stitch margin ({2 * margin} px)",
                                        largest))
    n = math.ceil((length - 2 * margin) / (largest - 2 * margin))
    win = min(largest, round_up(math.ceil((length + (n - 1) * 2 * margin) / n), step))
    # starts on multiples of the step: the network's poolings see the same pixel grid as in a whole-image pass
    # (a shift by anything else changes every output); with margin a multiple of step the overlap stays >= 2*margin
    q = (length - win) // step / (n - 1)
    return win, [step * round(i * q) for i in range(n)]


def plan_windows(height: int, width: int, tile: int = 96, overlap: float = DEFAULT_OVERLAP,
                 step: int | None = None, window: int | None = None, max_pixels: int = WHOLE_MAX_PIXELS,
                 large: int = LARGE_WINDOW, margin: int = STITCH_MARGIN) -> WindowPlan:
    """The windows for a `height` x `width` (scaled) image.

    `step` None (a model of one fixed size `tile`): tile x tile windows blended at `overlap` (hann_plan). With
    `step` (free height/width, multiples of step): `window` None chooses the fewest computed pixels: the whole
    image padded to multiples of `step` when that has at most `max_pixels` pixels, else stitched windows of at
    most `large` px; `window` = `tile` keeps the fixed-size protocol; another `window` = stitched windows of at
    most that size."""
    if height < 1 or width < 1:
        raise InputError(expected_found("image to tile", "H, W >= 1", (height, width)))
    if step is None or window == tile:
        return hann_plan(height, width, tile, overlap)
    if window is not None and (window < step or window % step):
        raise InputError(expected_found("--window", f"a multiple of {step} (the model's size step)", window))
    ph, pw = round_up(height, step), round_up(width, step)
    if window is None and ph * pw <= max_pixels:
        return WindowPlan(height, width, ph, pw, ph, pw, (0,), (0,), "stitch")
    largest = window or large
    if window is not None:  # a small window keeps what margin it can (96 px: 32 px each side)
        margin = min(margin, (window - step) // 2 // step * step)
    wh, ys = stitched_axis(ph, largest, margin, step)
    ww, xs = stitched_axis(pw, largest, margin, step)
    return WindowPlan(height, width, ph, pw, wh, ww, tuple(ys), tuple(xs), "stitch")


def _cuts(starts: tuple[int, ...], win: int, length: int) -> list[tuple[int, int]]:
    """[lo, hi) each window contributes along one axis: the overlaps are cut in their middle."""
    bounds = [0] + [(starts[i] + win + starts[i + 1]) // 2 for i in range(len(starts) - 1)] + [length]
    return list(zip(bounds[:-1], bounds[1:]))


class TileBlender:
    """Accumulates per-window maps of one (padded) image: `sum(p * w)` and `sum(w)`, then their ratio (hann); or,
    for a stitched plan, each window's central part copied into place.

    `corners` are the windows in generation order; `add(start, maps)` takes the maps (k, [C,] win_h, win_w) of
    windows start..start+k-1, in any grouping but in order (the sums are float32: the same order gives the same
    bits).
    """

    def __init__(self, height: int, width: int, tile: int, overlap: float = DEFAULT_OVERLAP,
                 floor: float = DEFAULT_FLOOR, channels: int | None = None, plan: WindowPlan | None = None) -> None:
        plan = plan or hann_plan(height, width, tile, overlap)
        self.plan = plan
        self.height, self.width, self.tile = plan.height, plan.width, plan.win_h
        self.win_h, self.win_w = plan.win_h, plan.win_w
        self.ys, self.xs = list(plan.ys), list(plan.xs)
        self.n_tiles = plan.n_windows
        shape = (plan.height, plan.width) if channels is None else (channels, plan.height, plan.width)
        self.acc = np.zeros(shape, np.float32)
        if plan.blend == "hann":
            self.window = blend_window(plan.win_h, floor)
            self.wsum = np.zeros((plan.height, plan.width), np.float32)
        else:
            self._ycuts, self._xcuts = _cuts(plan.ys, plan.win_h, plan.height), _cuts(plan.xs, plan.win_w, plan.width)

    @classmethod
    def from_plan(cls, plan: WindowPlan, floor: float = DEFAULT_FLOOR, channels: int | None = None) -> TileBlender:
        return cls(plan.height, plan.width, plan.win_h, floor=floor, channels=channels, plan=plan)

    def corner(self, i: int) -> tuple[int, int]:
        """(y, x) of window i, row by row (no list of all windows is kept)."""
        return self.ys[i // len(self.xs)], self.xs[i % len(self.xs)]

    def add(self, start: int, maps: np.ndarray) -> None:
        if self.plan.blend != "hann":
            self._stitch(start, maps)
            return
        t, win = self.tile, self.window
        for i, p in enumerate(maps, start):
            y, x = self.corner(i)
            self.acc[..., y:y + t, x:x + t] += p * win
            self.wsum[y:y + t, x:x + t] += win

    def _stitch(self, start: int, maps: np.ndarray) -> None:
        nx = len(self.xs)
        for i, p in enumerate(maps, start):
            (y0, y1), (x0, x1) = self._ycuts[i // nx], self._xcuts[i % nx]
            y, x = self.corner(i)
            self.acc[..., y0:y1, x0:x1] = p[..., y0 - y:y1 - y, x0 - x:x1 - x]

    def result(self, height: int, width: int) -> np.ndarray:
        """The blended map cropped to (height, width) (the size before padding)."""
        if self.plan.blend == "hann":
            np.divide(self.acc, self.wsum, out=self.acc)
        return self.acc[..., :height, :width]
