"""Images in, nuclei out (`unetpp predict`): any image size, resize or tiled mode, on the inference driver."""

from unetpp.predict.folder import predict_paths
from unetpp.predict.image import PredictOptions
from unetpp.predict.imageio import read_image
from unetpp.predict.instances import label_nuclei, nucleus_table
from unetpp.predict.single import predict_image, predict_one

__all__ = ["PredictOptions", "label_nuclei", "nucleus_table", "predict_image", "predict_one",
           "predict_paths", "read_image"]
