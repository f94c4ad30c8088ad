"""Where `unetpp evaluate --instances` reads the ground truth: two layouts behind one small interface.

- DSB2018 `stage1_train` (or a folder holding it): `<id>/masks/*.png`, one mask per nucleus
  (unetpp.eval.instance_io.load_gt_instances), the image at `<id>/images/<id>.png`;
- label maps (the TNBC layout, shared/data/tnbc): `labels/<id>_label.png`, one 8- or 16-bit image per picture with
  0 = background and one id per nucleus, the picture at `images/<id>.<png|jpg|jpeg|tif|tiff>` (optional: only the
  modality column and overlays need it). Scored as annotated (TNBC's gaps between touching nuclei included).
A folder with a `labels/` sub-folder and no `stage1_train/` is read as label maps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetpp.data.prepare import find_stage1_train, sample_image_path
from unetpp.eval.instance_io import load_gt_instances, read_label_image

LABEL_MAP_SUFFIX = "_label.png"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
STAGE1, LABEL_MAPS = "stage1_train", "label_maps"


@dataclass(frozen=True)
class GroundTruth:
    """A ground-truth folder of one of the two layouts (see the module docstring)."""

    root: Path
    layout: str

    def has(self, id_: str) -> bool:
        if self.layout == LABEL_MAPS:
            return (self.root / "labels" / f"{id_}{LABEL_MAP_SUFFIX}").is_file()
        return (self.root / id_ / "masks").is_dir()

    def labels(self, id_: str) -> np.ndarray:
        """The true label image of `id_` (uint8/uint16, 0 = background)."""
        if self.layout == LABEL_MAPS:
            return read_label_image(self.root / "labels" / f"{id_}{LABEL_MAP_SUFFIX}")
        return load_gt_instances(self.root, id_)

    def image_path(self, id_: str) -> Path:
        """The picture of `id_` (it may not exist for label maps: callers check)."""
        if self.layout == LABEL_MAPS:
            for suffix in IMAGE_SUFFIXES:
                path = self.root / "images" / f"{id_}{suffix}"
                if path.is_file():
                    return path
            return self.root / "images" / f"{id_}.png"
        return sample_image_path(self.root, id_)

    def expected(self) -> str:
        """What every scored id needs, for error messages."""
        return f"labels/<id>{LABEL_MAP_SUFFIX}" if self.layout == LABEL_MAPS else "<id>/masks/"


def open_truth(gt: str | Path) -> GroundTruth:
    """The layout of `gt`: label maps where it holds labels/ and no stage1_train/, else stage1_train."""
    gt = Path(gt)
    if (gt / "labels").is_dir() and not (gt / "stage1_train").is_dir():
        return GroundTruth(gt, LABEL_MAPS)
    return GroundTruth(find_stage1_train(gt), STAGE1)
