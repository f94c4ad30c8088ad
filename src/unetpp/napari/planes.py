"""A layer's array as 2-D planes, each segmented by the API, put back together with ids unique in the stack.

A napari image layer holds (..., H, W) grey data or (..., H, W, 3|4) RGB(A) data; every leading axis (z, t,
channels of a non-RGB stack) is a plane index. Planes are segmented in chunks (tiles of one chunk share the
runtime's batches; memory holds one chunk's probability maps unless the caller keeps them), and plane k's ids
start after plane k-1's largest, so each nucleus of the stack has its own id.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from unetpp.errors import Cancelled, InputError, expected_found
from unetpp.predict.instances import CSV_HEADER

PLANES_PER_CALL = 8
_READ_AS_IS = tuple(np.dtype(t) for t in (np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64))


@dataclass(frozen=True)
class ImageStack:
    """An image layer's data seen as planes: `lead` leading axes, `plane_shape` (H, W), RGB(A) or grey."""

    data: Any  # numpy, dask, zarr ... : read one plane at a time
    rgb: bool
    name: str = "image"

    @property
    def lead(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.data.shape[: self.data.ndim - (3 if self.rgb else 2)])

    @property
    def plane_shape(self) -> tuple[int, int]:
        shape = self.data.shape[self.data.ndim - (3 if self.rgb else 2):]
        return int(shape[0]), int(shape[1])

    @property
    def n_planes(self) -> int:
        return int(np.prod(self.lead)) if self.lead else 1

    def plane(self, k: int) -> np.ndarray:
        """Plane k as numpy; integer types the model's reader does not take (int8, uint32, int64 ...) as float32,
        which it stretches like 16-bit data."""
        index = np.unravel_index(k, self.lead) if self.lead else ()
        plane = np.asarray(self.data[tuple(int(i) for i in index)])
        return plane if plane.dtype in _READ_AS_IS else plane.astype(np.float32)


def image_stack(data: Any, rgb: bool | None = None, name: str = "image") -> ImageStack:
    """Check an array as an image to segment; `rgb=None` guesses as napari does (last axis of 3 or 4)."""
    what = f"layer {name!r}"
    shape = tuple(getattr(data, "shape", ()))
    dtype = np.dtype(getattr(data, "dtype", np.float64))
    if rgb is None:
        rgb = len(shape) >= 3 and shape[-1] in (3, 4)
    need = 3 if rgb else 2
    if len(shape) < need:
        expected = "an RGB(A) image (..., H, W, 3|4)" if rgb else "an image of at least 2 dimensions (..., H, W)"
        raise InputError(expected_found(what, expected, f"an array of shape {shape}"))
    if any(n == 0 for n in shape):
        raise InputError(expected_found(what, "an image with pixels", f"an empty array of shape {shape}"))
    if rgb and shape[-1] not in (3, 4):
        raise InputError(expected_found(what, "RGB or RGBA colour (last axis 3 or 4)", f"shape {shape}"))
    if dtype.kind not in "uif":
        raise InputError(expected_found(what, "integer or float samples", f"dtype {dtype}"))
    return ImageStack(data, bool(rgb), name)


@dataclass
class Segmentation:
    """Labels (lead + (H, W), int32), one table row per nucleus, the count, the probability map if kept."""

    labels: np.ndarray
    columns: dict[str, np.ndarray]
    count: int
    prob: np.ndarray | None = None
    meta: list[dict[str, Any]] | None = None  # per plane: scale, tiles ...


def mean_intensity(plane: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Mean of the layer's own values over each label 1..n (RGB(A): the mean of R, G and B), as float64."""
    values = plane[..., :3].astype(np.float64).mean(axis=-1) if plane.ndim == 3 else plane.astype(np.float64)
    sums = np.bincount(labels.ravel(), weights=values.ravel(), minlength=n + 1)[1:]
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    return sums / np.maximum(areas, 1)


def _table(stack: ImageStack, per_plane: list[tuple[int, list[dict[str, Any]], np.ndarray]]) -> dict[str, np.ndarray]:
    """Columns: index (napari's key to the label), label, the plane's indices, predict's columns, mean_intensity."""
    cols: dict[str, list[Any]] = {"index": [], "label": []}
    axes = [f"axis{i}" for i in range(len(stack.lead))]
    for name in axes:
        cols[name] = []
    for name in CSV_HEADER[1:] + ["mean_intensity"]:
        cols[name] = []
    for k, rows, means in per_plane:
        index = np.unravel_index(k, stack.lead) if stack.lead else ()
        for row in rows:
            cols["index"].append(row["label"])
            cols["label"].append(row["label"])
            for name, i in zip(axes, index):
                cols[name].append(int(i))
            for name in CSV_HEADER[1:]:
                cols[name].append(row[name])
            cols["mean_intensity"].append(float(means[row["plane_label"] - 1]))
    return {k: np.asarray(v) for k, v in cols.items()}


def segment_stack(model: Any, stack: ImageStack, keep_prob: bool = False,
                  progress: Callable[[float], None] | None = None, cancel: threading.Event | None = None,
                  planes_per_call: int = PLANES_PER_CALL, **options: Any) -> Segmentation:
    """Every plane through `model.predict_many` (an unetpp.api.Model), `options` as predict's (scale, tta ...)."""
    n = stack.n_planes
    labels = np.zeros(stack.lead + stack.plane_shape, np.int32)
    flat = labels.reshape((n,) + stack.plane_shape)
    prob = np.zeros(labels.shape, np.float32) if keep_prob else None
    per_plane, metas, offset, count = [], [], 0, 0
    for start in range(0, n, planes_per_call):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        ks = range(start, min(n, start + planes_per_call))
        planes = [stack.plane(k) for k in ks]
        share = len(planes) / n

        def chunk_progress(f: float, start: int = start, share: float = share) -> None:
            if progress is not None:
                progress(min(1.0, start / n + f * share))

        results = model.predict_many(planes, channel_order="rgb", progress=chunk_progress, cancel=cancel, **options)
        for k, plane, (lab, info) in zip(ks, planes, results):
            top = int(lab.max(initial=0))
            rows = [{**r, "label": r["label"] + offset, "plane_label": r["label"]} for r in info["table"]]
            flat[k] = np.where(lab > 0, lab + offset, 0)
            per_plane.append((k, rows, mean_intensity(plane, lab, top)))
            metas.append({**info["meta"], "protocol": info["protocol"]})
            if prob is not None:
                prob.reshape(flat.shape)[k] = info["prob"]
            offset += top
            count += len(rows)
    if progress is not None:
        progress(1.0)
    return Segmentation(labels, _table(stack, per_plane), count, prob, metas)
