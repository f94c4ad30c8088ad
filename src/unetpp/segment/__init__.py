"""Full-resolution segmentation and nuclei (`unetpp predict`): any image size, resize or tiled mode."""

from unetpp.segment.imageio import read_image
from unetpp.segment.instances import label_nuclei, nucleus_table
from unetpp.segment.predict import PredictOptions, predict_image, predict_one
from unetpp.segment.runner import predict_paths
from unetpp.segment.tiling import blend_tiles

__all__ = ["PredictOptions", "blend_tiles", "label_nuclei", "nucleus_table", "predict_image", "predict_one",
           "predict_paths", "read_image"]
