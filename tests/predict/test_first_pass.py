"""The automatic scale's first pass (predict/first_pass.py): right on large images, checked by the second pass."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from unetpp.predict.first_pass import AreaEstimate, _areas, _probs, estimate_nucleus_area, scale_check
from unetpp.runtimes import open_runtime


@pytest.fixture(scope="module")
def guide():
    rt = open_runtime("guide", threads=2).activate()
    yield rt
    rt.deactivate()


def _mosaic(root: Path, side: int) -> tuple[np.ndarray, float]:
    """side x side px of 256x256 generated fields, and the true median area of the nuclei wholly inside them."""
    fields = []
    for s in sorted((root / "stage1_train").iterdir()):
        masks = [cv2.imread(str(m), cv2.IMREAD_GRAYSCALE) > 127 for m in (s / "masks").glob("*.png")]
        inside = [int(m.sum()) for m in masks if m[:256, :256].sum() == m.sum() > 0]
        fields.append((cv2.imread(str(s / "images" / f"{s.name}.png"))[:256, :256], inside))
    out = np.zeros((side, side, 3), np.uint8)
    areas: list[int] = []
    for k, (y, x) in enumerate((y, x) for y in range(0, side, 256) for x in range(0, side, 256)):
        img, inside = fields[k % len(fields)]
        out[y:y + 256, x:x + 256] = img
        areas += inside
    return out, float(np.median(areas))


def test_a_large_image_is_measured_on_windows_of_its_own_pixels(guide, synthetic_root: Path) -> None:
    """A 3072x3072 mosaic of 256x256 fields: the whole-image squeeze (the rule before) makes its nuclei a third of a
    pixel at the model's input and misses their size (twice the truth here, 12x on a 5000x5000 mosaic of val fields:
    bench/results/scale_estimate.md); windows of its own pixels find it."""
    img, truth = _mosaic(synthetic_root, 3072)  # a multiple of 256: whole fields only
    squeezed = _areas(_probs(guide, [img], 96, (768, 768))[0], 0.5, 1, True, drop_edge=False) * 16.0  # at 1/4 side
    before = float(np.median(squeezed)) if squeezed.size else float("inf")
    est = estimate_nucleus_area(img, guide)
    assert not 1 / 1.5 <= before / truth <= 1.5, (before, truth)  # the failure this fixes
    assert est.window is not None and est.window < 3072 and est.n_nuclei >= 20
    assert 1 / 1.5 <= est.median_area / truth <= 1.5, (est.median_area, truth)
    assert est.uncertain is None


def test_an_image_of_a_training_size_is_squeezed_whole_as_before(guide, synthetic_root: Path) -> None:
    s = sorted((synthetic_root / "stage1_train").iterdir())[0]
    img = cv2.imread(str(s / "images" / f"{s.name}.png"))
    est = estimate_nucleus_area(img, guide)
    direct = _areas(_probs(guide, [img], 96, img.shape[:2])[0], 0.5, 10, True, drop_edge=False)
    assert est.window is None and est.median_area == float(np.median(direct))


def test_the_second_pass_checks_the_estimate() -> None:
    first = AreaEstimate(100.0, 40, None, 1, 15.0)
    assert scale_check(first, np.array([90.0, 110.0, 120.0]), 1.2)["uncertain"] is None
    far = scale_check(first, np.array([300.0, 310.0]), 1.2)["uncertain"]
    assert "3.05x the first pass's estimate (100 px)" in far
    few = AreaEstimate(100.0, 2, None, 1, 15.0, "the first pass found only 2 nucleus/nuclei")
    assert "only 2" in scale_check(few, np.array([100.0]), 1.2)["uncertain"]


def test_predict_names_an_uncertain_scale_in_the_summary_and_on_stderr(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Two nuclei: too few for a median to mean much; the shipped instance model's run says so."""
    img = np.full((160, 200, 3), 15, np.uint8)
    cv2.circle(img, (60, 80), 14, (220, 220, 220), -1)
    cv2.circle(img, (140, 70), 12, (210, 210, 210), -1)
    cv2.imwrite(str(tmp_path / "sparse.png"), img)
    from unetpp.cli.main import main

    rc = main(["predict", str(tmp_path / "sparse.png"), "-o", str(tmp_path / "o"), "--no-progress", "--threads", "2"])
    err = capsys.readouterr().err
    assert rc == 0 and "the automatic scale of sparse is uncertain" in err and "--scale" in err, err
    summary = json.loads((tmp_path / "o" / "predict_summary.json").read_text())
    assert [u["image"] for u in summary["scale_uncertain"]] == ["sparse"]
    check = summary["images"][0]["scale_check"]
    assert check["first_pass"]["n_nuclei"] < 5 and check["uncertain"]
