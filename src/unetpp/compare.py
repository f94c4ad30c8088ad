"""Comparing two sets of logits (export parity, the compile guard, backend agreement): one definition, named
tolerances. Comparison is kept apart from running, as Polygraphy's comparator is."""

from __future__ import annotations

from typing import Any

import numpy as np


def compare_logits(reference: np.ndarray, candidate: np.ndarray, threshold: float = 0.5,
                   atol: float | None = None, rtol: float = 0.0) -> dict[str, Any]:
    """Max/mean |difference|, and how many pixels change their decision `logit > threshold`.

    With `atol`, `within_atol` says whether every difference is within `atol + rtol * max|reference|` (fp32
    kernels that sum in another order differ in proportion to the logits' size, so a fixed bound alone is too
    tight for large logits).
    """
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape:
        from unetpp.errors import InputError, expected_found

        raise InputError(expected_found("logits to compare", f"two arrays of one shape {ref.shape}", cand.shape))
    diff = np.abs(ref - cand)
    flipped = int(np.count_nonzero((ref > threshold) != (cand > threshold)))
    out: dict[str, Any] = {
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "flipped_pixels": flipped,
        "flipped_share": flipped / float(ref.size) if ref.size else 0.0,
        "threshold": threshold,
    }
    if atol is not None:
        bound = atol + rtol * (float(np.abs(ref).max()) if ref.size else 0.0)
        out.update(atol=atol, rtol=rtol, tolerance=bound, within_atol=bool(out["max_abs_diff"] <= bound))
    return out
