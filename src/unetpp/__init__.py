"""unetpp: UNet++ (NestedUNet) nuclei segmentation, from a PyTorch checkpoint to fast, verified inference.

The Python API (`unetpp.load`, `Model.predict`, `Model.predict_folder`, `unetpp.evaluate`,
`unetpp.evaluate_instances`) lives in unetpp.api and is imported on first use, so `import unetpp` stays cheap.
"""

from __future__ import annotations

from typing import Any

from unetpp.config import ModelConfig, PreprocessConfig
from unetpp.errors import UnetppError

__version__ = "0.1.0"
_API = ("load", "Model", "evaluate", "evaluate_instances")
__all__ = ["Model", "ModelConfig", "PreprocessConfig", "UnetppError", "__version__", "evaluate",
           "evaluate_instances", "load"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from unetpp import api

        return getattr(api, name)
    raise AttributeError(f"module 'unetpp' has no attribute {name!r}")
