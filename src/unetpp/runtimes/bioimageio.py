"""BioImage Model Zoo packages (a `.zip`, or its `rdf.yaml`) as a runtime: the package is checked and its ONNX
weights run on ONNX Runtime, with the preprocessing and outputs the package declares.

A package whose input size is free (min + n * step) runs at the smallest valid size >= 96 (the tile predict uses).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from unetpp.config import PreprocessConfig
from unetpp.model.metadata import PREDICT_KEYS
from unetpp.model.zoo_package import open_package, zoo_runtime_inputs
from unetpp.runtimes.ort import OrtRuntime

TILE = 96


class PackageNormalizer:
    """OpenCV's BGR uint8 image -> the package's channel order -> the package's own preprocessing."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.order, self.preprocess = info["channel_order"], info["preprocess"]
        self.channels = len(info["channel_names"])

    def __call__(self, img_bgr: np.ndarray) -> np.ndarray:
        if self.order == "RGB" or (self.order is None and self.channels == 3):
            img = np.ascontiguousarray(img_bgr[:, :, ::-1])
        elif self.order == "GRAY" or self.channels == 1:
            img = cv2.cvtColor(img_bgr, cv2.COLOR_BGR2GRAY)[:, :, None]
        else:
            img = img_bgr
        return np.asarray(self.preprocess(img), dtype=np.float32)


class BioimageioRuntime(OrtRuntime):
    """Options: those of onnxruntime."""

    name = "bioimageio"
    suffixes = (".zip", ".yaml")

    def _activate(self) -> None:
        self._package = open_package(self.model)
        self._info = zoo_runtime_inputs(self._package)
        super()._activate()
        info = self._info
        self.metadata = {"outputs": info["output_channels"],
                         "output_kind": "logits" if info["outputs_are_logits"] else "probability",
                         "package": {"name": self._package.name, "source": str(self.model)}}
        ours = ((self._package.rdf.get("config") or {}).get("unetpp") or {})
        for key in PREDICT_KEYS:  # a package exported by unetpp: its model's scale rule and chosen post-processing
            if isinstance(ours.get(key), dict):
                self.metadata[key] = ours[key]

    def _onnx_path(self) -> Path:
        return Path(self._info["onnx_path"])

    def _free_size(self, shape: list) -> list:
        (c, hy, wx), (_, sy, sx) = self._info["min_shape"], self._info["step"]

        def size(lo: int, step: int) -> int:
            if lo >= TILE or step <= 0:
                return lo
            return lo + -(-(TILE - lo) // step) * step

        return [shape[0], c, size(hy, sy), size(wx, sx)]

    def image_normalizer(self) -> Any:
        return PackageNormalizer(self._info)

    @property
    def preprocess(self) -> PreprocessConfig:
        """The package's own steps normalise images (image_normalizer); the config gives the window size only."""
        return PreprocessConfig(size=int(self.input_shape[-1]))

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        if getattr(self, "_package", None) is not None:
            d["package"] = {"name": self._package.name, "onnx_sha256": self._package.onnx_sha256}
        return d
