"""The bioimage.io (format 0.5) processing steps we implement, applied to one sample laid out (C, H, W).

A step is the RDF's mapping `{"id": ..., "kwargs": {...}}`. Reductions follow the spec: `axes` names the axes
reduced jointly (`batch` is ignored: we process one sample), none means all axes. As bioimageio.core 0.11 does (checked
against it), data-dependent statistics (means, standard deviations, percentiles) are computed from the unprocessed
input tensor, not from the output of the steps before. Arithmetic is float32, except where a step casts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from unetpp.errors import InputError, expected_found

SAMPLE_AXES = ("channel", "y", "x")
PRE_STEPS = ("ensure_dtype", "scale_linear", "scale_range", "zero_mean_unit_variance",
             "fixed_zero_mean_unit_variance", "clip", "binarize")
DTYPES = ("float32", "float64", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "bool")

Step = dict[str, Any]


def _reduce_axes(kwargs: dict[str, Any], step_id: str) -> tuple[int, ...] | None:
    axes = kwargs.get("axes")
    if axes is None:
        return None
    out = []
    for a in axes:
        if a == "batch":
            continue
        if a not in SAMPLE_AXES:
            raise InputError(expected_found(f"{step_id} axes", f"names among batch, {', '.join(SAMPLE_AXES)}",
                                            repr(a)))
        out.append(SAMPLE_AXES.index(a))
    return tuple(out)


def _along(values: Any, kwargs: dict[str, Any], step_id: str, n_channels: int) -> np.ndarray | float:
    """A scalar, or per-channel values shaped (C, 1, 1) for broadcasting over one (C, H, W) sample."""
    if not isinstance(values, list | tuple):
        return float(values)
    axis = kwargs.get("axis")
    if axis != "channel":
        raise InputError(expected_found(f"{step_id} axis", "'channel' (per-axis values along y/x are not supported)",
                                        repr(axis)))
    if len(values) != n_channels:
        raise InputError(expected_found(f"{step_id} values along channel", f"{n_channels} (one per channel)",
                                        len(values)))
    return np.asarray(values, dtype=np.float32).reshape(-1, 1, 1)


def _percentile(x: np.ndarray, q: float, axes: tuple[int, ...] | None) -> np.ndarray:
    return np.percentile(x, q, axis=axes, keepdims=axes is not None).astype(np.float32)


def apply_step(x: np.ndarray, step: Step, raw: np.ndarray | None = None, tensor_id: str | None = None) -> np.ndarray:
    """One pre-processing step on a (C, H, W) array; `raw` (default `x`) is the unprocessed input the statistics
    come from."""
    sid, kw = step.get("id"), dict(step.get("kwargs") or {})
    ref = (x if raw is None else raw).astype(np.float32, copy=False)
    c = x.shape[0]
    if sid == "ensure_dtype":
        dtype = kw.get("dtype", "float32")
        if dtype not in DTYPES:
            raise InputError(expected_found("ensure_dtype dtype", " / ".join(DTYPES), repr(dtype)))
        return x.astype(dtype)
    x = x.astype(np.float32, copy=False)
    if sid == "scale_linear":
        return (x * _along(kw.get("gain", 1.0), kw, sid, c) + _along(kw.get("offset", 0.0), kw, sid, c)).astype(
            np.float32)
    if sid == "fixed_zero_mean_unit_variance":
        mean, std = _along(kw["mean"], kw, sid, c), _along(kw["std"], kw, sid, c)
        return ((x - mean) / (std + np.float32(1e-6))).astype(np.float32)
    if sid == "zero_mean_unit_variance":
        axes = _reduce_axes(kw, sid)
        eps = np.float32(kw.get("eps", 1e-6))
        mean = ref.mean(axis=axes, keepdims=axes is not None)
        std = ref.std(axis=axes, keepdims=axes is not None)
        return ((x - mean) / (std + eps)).astype(np.float32)
    if sid == "scale_range":
        other = kw.get("reference_tensor")
        if other is not None and other != tensor_id:
            raise InputError(expected_found("scale_range reference_tensor", f"none or this tensor ({tensor_id})",
                                            repr(other)))
        axes = _reduce_axes(kw, sid)
        lo = _percentile(ref, float(kw.get("min_percentile", 0.0)), axes)
        hi = _percentile(ref, float(kw.get("max_percentile", 100.0)), axes)
        return ((x - lo) / (hi - lo + np.float32(kw.get("eps", 1e-6)))).astype(np.float32)
    if sid == "clip":
        lo = kw.get("min")
        hi = kw.get("max")
        if kw.get("min_percentile") is not None:
            lo = _percentile(ref, float(kw["min_percentile"]), None)
        if kw.get("max_percentile") is not None:
            hi = _percentile(ref, float(kw["max_percentile"]), None)
        return np.clip(x, lo, hi).astype(np.float32)
    if sid == "binarize":
        return (x > _along(kw["threshold"], kw, sid, c)).astype(np.float32)
    raise InputError(expected_found("pre-processing step", " / ".join(PRE_STEPS), repr(sid),
                                    "This package needs a step unetpp does not implement."))


def check_steps(steps: Sequence[Step], what: str = "pre-processing") -> None:
    """Reject unknown step ids up front (open_package), rather than at the first image."""
    for s in steps:
        if s.get("id") not in PRE_STEPS:
            raise InputError(expected_found(f"{what} step", " / ".join(PRE_STEPS), repr(s.get("id")),
                                            "This package needs a step unetpp does not implement."))


def make_preprocess(steps: Sequence[Step], n_channels: int,
                    tensor_id: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """A callable mapping an (H, W, C) image (uint8 or any numeric, in the package's channel order) to the
    model's float32 (C, H, W) input, applying `steps` in order."""
    check_steps(steps)
    steps = [dict(s) for s in steps]

    def preprocess(image: np.ndarray) -> np.ndarray:
        img = np.asarray(image)
        if img.ndim == 2 and n_channels == 1:
            img = img[..., None]
        if img.ndim != 3 or img.shape[2] != n_channels:
            raise InputError(expected_found("image", f"an (H, W, {n_channels}) array", f"shape {img.shape}"))
        x = raw = np.ascontiguousarray(img.transpose(2, 0, 1))
        for s in steps:
            x = apply_step(x, s, raw, tensor_id)
        return np.ascontiguousarray(x, dtype=np.float32)

    return preprocess


def linear_parameters(steps: Sequence[Step], n_channels: int) -> dict[str, list[float]] | None:
    """Fold fixed affine steps into one per-channel x*gain + offset (and the equivalent mean/std); None when a
    step depends on the data (zero_mean_unit_variance, scale_range, clip, binarize)."""
    gain, offset = np.ones(n_channels), np.zeros(n_channels)
    for s in steps:
        sid, kw = s.get("id"), s.get("kwargs") or {}
        if sid == "ensure_dtype":
            continue
        if sid == "scale_linear":
            g, o = (np.broadcast_to(np.asarray(kw.get(k, d), float), n_channels) for k, d in
                    (("gain", 1.0), ("offset", 0.0)))
        elif sid == "fixed_zero_mean_unit_variance":
            std = np.broadcast_to(np.asarray(kw["std"], float), n_channels) + 1e-6
            g, o = 1.0 / std, -np.broadcast_to(np.asarray(kw["mean"], float), n_channels) / std
        else:
            return None
        gain, offset = gain * g, offset * g + o
    if np.any(gain == 0):
        return None
    return {"gain": gain.tolist(), "offset": offset.tolist(), "mean": (-offset / gain).tolist(),
            "std": (1.0 / gain).tolist()}
