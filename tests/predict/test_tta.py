"""Test-time augmentation: each tile's 8 flips/rotations go through the runtime and come back averaged. With a
per-pixel model (equivariant to any flip or rotation, tests/toy_runtime.py) the averaged map equals the plain one,
and the runtime sees 8 times the inputs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from toy_runtime import ToyRuntime, write_toy_model
from unetpp.predict.image import PredictOptions
from unetpp.predict.single import predict_image
from unetpp.runtimes import get_runtime, register, unregister


def test_tta_of_a_pixelwise_model_changes_nothing_but_the_cost(tmp_path: Path) -> None:
    register(ToyRuntime)
    try:
        model = write_toy_model(tmp_path / "toy.npz", w=[[40000.0, -25000.0, 9000.0]], b=[0.3])
        rng = np.random.default_rng(0)
        img = cv2.GaussianBlur(rng.integers(0, 255, (150, 230, 3), dtype=np.uint8), (0, 0), 3)
        for mode, scale in (("tile", "1.0"), ("resize", "auto")):  # resize takes no --scale (it is refused)
            rt = get_runtime("toy", model).activate()
            plain = predict_image(img, rt, PredictOptions(mode=mode, scale=scale))
            n_plain = sum(rt.calls)
            rt.calls.clear()
            tta = predict_image(img, rt, PredictOptions(mode=mode, scale=scale, tta=True))
            assert sum(rt.calls) == 8 * n_plain, mode
            np.testing.assert_allclose(tta["prob"], plain["prob"], atol=1e-6)
            assert 0.05 < plain["mask"].mean() < 0.95  # the test image has both classes: the check can fail
    finally:
        unregister("toy")
