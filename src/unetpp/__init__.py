"""unetpp: UNet++ (NestedUNet) nuclei segmentation, from a PyTorch checkpoint to fast, verified inference."""

from unetpp.config import ModelConfig, PreprocessConfig
from unetpp.errors import UnetppError

__version__ = "0.1.0"
__all__ = ["ModelConfig", "PreprocessConfig", "UnetppError", "__version__"]
