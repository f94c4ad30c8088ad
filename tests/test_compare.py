"""compare_logits: the differences and the tolerance, against values computed by hand."""

from __future__ import annotations

import numpy as np

from unetpp.compare import compare_logits


def test_differences_and_flipped_decisions() -> None:
    ref = np.array([0.0, 1.0, 10.0, -2.0])
    cand = np.array([0.0, 0.4, 10.0003, -2.0])
    out = compare_logits(ref, cand, threshold=0.5)
    assert np.isclose(out["max_abs_diff"], 0.6) and np.isclose(out["mean_abs_diff"], 0.6003 / 4)
    assert out["flipped_pixels"] == 1 and out["flipped_share"] == 0.25 and "within_atol" not in out


def test_tolerance_grows_with_the_largest_logit() -> None:
    ref = np.array([0.0, 12.0, -3.0])
    cand = ref + np.array([0.0, 5e-4, 0.0])
    # a fixed bound alone: 5e-4 > 1e-4
    assert not compare_logits(ref, cand, atol=1e-4)["within_atol"]
    # 1e-4 + 5e-5 * 12 = 7e-4 >= 5e-4
    out = compare_logits(ref, cand, atol=1e-4, rtol=5e-5)
    assert np.isclose(out["tolerance"], 7e-4) and out["within_atol"]
    # the same difference on logits 10x smaller is out of bounds: 1e-4 + 5e-5 * 1.2 = 1.6e-4 < 5e-4
    assert not compare_logits(ref / 10, ref / 10 + (cand - ref), atol=1e-4, rtol=5e-5)["within_atol"]
