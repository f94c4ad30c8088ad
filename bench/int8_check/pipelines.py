"""What the int8_check scripts share: the default runtime's int8 builds (from the model cache, built there on first
use) and the labels of one whole pipeline (main network and first pass each fp32 or int8) on a set of images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unetpp.compile import fast
from unetpp.model.sources import model_source
from unetpp.runtimes import get_runtime, open_runtime

DEPTH = 3  # the shipped instance model's default depth


def default_builds() -> tuple[Path, Path]:
    """(the instance model's int8 OpenVINO IR at DEPTH, the int8 first pass's IR), as the default runtime uses them."""
    artefact, check = fast.int8_build(model_source("instance"), "openvino", DEPTH)
    return artefact, Path(check["first_pass"]["model"])


def pipeline_labels(pictures: list[tuple[str, np.ndarray]], main_prec: str, first_prec: str, main_int8: Path,
                    first_int8: Path) -> dict[str, Any]:
    """id -> labels of `unetpp predict`'s defaults with the main network and the first pass in these precisions."""
    if main_prec == "fp32":
        rt = open_runtime(model_source("instance"), "onnxruntime", depth=DEPTH)
    else:
        rt = get_runtime("openvino", main_int8)
    with rt:
        rt.first_pass_model = first_int8 if first_prec == "int8" else None
        return fast.predict_labels(pictures, rt)
