"""`unetpp.segment_nuclei`: an image array in, labels out (the npe2 command; also a plain function for scripts
and workflow plugins such as napari-assistant, whose annotations it carries)."""

from __future__ import annotations

from typing import Any

import numpy as np

from unetpp.napari.models import get_model
from unetpp.napari.planes import image_stack, segment_stack

try:  # the annotations workflow tools read (napari-assistant, magicgui); plain arrays without napari
    from napari.types import ImageData, LabelsData
except ImportError:  # pragma: no cover - napari is the extra that brings this module
    ImageData = LabelsData = np.ndarray


def segment_nuclei(image: ImageData, model: str = "instance", scale: str | float = "auto",
                   tta: bool = False, backend: str | None = None, rgb: bool | None = None,
                   **options: Any) -> LabelsData:
    """Nuclei of a 2-D image, or of each plane of a stack: int32 labels of the image's spatial shape, ids unique
    in the stack. `model`: "instance" (default), "guide" or a checkpoint, ONNX, OpenVINO IR or zoo package path;
    `scale`: "auto" (the model's rule) or a factor; `rgb`: None guesses from the last axis (3 or 4: colour).
    Other keyword options are `unetpp predict`'s (threshold, min_area, overlap, batch ...)."""
    stack = image_stack(image, rgb)
    opened, lock = get_model(model, backend)
    with lock:
        return segment_stack(opened, stack, scale=scale, tta=tta, **options).labels
