"""The napari plugin's tests run a real viewer (napari's make_napari_viewer, pytest-qt) on a real X display:
pytest-xvfb starts Xvfb for the session (`.ci/run` installs it). Without napari or Qt the modules skip; without a
display they fail in CI (which must have Xvfb) and skip elsewhere, rather than let Qt abort the whole run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session", autouse=True)
def _display() -> None:
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    why = ("no X display for Qt: install Xvfb (apt-get install xvfb; pytest-xvfb then starts it)"
           if shutil.which("Xvfb") is None else "no X display for Qt although Xvfb is installed (pytest-xvfb?)")
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="session")
def predict_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin's two sample files (real DSB2018 images) and a 16-bit copy of the fluorescence one."""
    import cv2

    from unetpp.napari.samples import FLUORESCENCE, STAINED

    inputs = tmp_path_factory.mktemp("inputs")
    for f in (FLUORESCENCE, STAINED):
        shutil.copy(f, inputs / f.name)
    grey = cv2.imread(str(FLUORESCENCE), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(inputs / "fluorescence16.png"), grey.astype(np.uint16) * 200 + 1000)  # not a x257 copy
    return inputs


@pytest.fixture(scope="session")
def predicted(predict_inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`unetpp predict` (the command line, default settings: the shipped instance model) on predict_inputs: the
    reference every plugin path is compared with, computed here (the shipped model may change)."""
    from unetpp.cli.main import main

    out = tmp_path_factory.mktemp("predicted")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("UNETPP_DEFAULT_RUNTIME", raising=False)  # the default runtime, as the plugin runs it
        assert main(["predict", str(predict_inputs), "-o", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(autouse=True)
def _default_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin runs what a user gets (the shipped int8 build where OpenVINO is installed), not the suite's fp32."""
    monkeypatch.delenv("UNETPP_DEFAULT_RUNTIME", raising=False)


@pytest.fixture(scope="session")
def cli_labels(predicted: Path):
    """stem -> the uint16 labels `unetpp predict` wrote for it."""
    import cv2

    return lambda stem: cv2.imread(str(predicted / f"{stem}_labels.png"), cv2.IMREAD_UNCHANGED)
