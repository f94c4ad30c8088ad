"""A runtime defined only in the tests: a per-pixel linear map over channels, read from an .npz file.

It states its facts like the shipped runtimes do (suffixes, options, flag mapping) and is registered with one
line; nothing else in unetpp knows about it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unetpp.config import ModelConfig, PreprocessConfig
from unetpp.model.metadata import build_metadata
from unetpp.runtimes.base import Runtime


class ToyRuntime(Runtime):
    """y[n, o] = sum_c w[o, c] * x[n, c] + b[o]; option `static_batch` makes it a fixed-batch model."""

    name = "toy"
    suffixes = (".npz",)
    OPTIONS = ("threads", "static_batch")

    def _activate(self) -> None:
        data = np.load(self.model)
        self._w, self._b = data["w"].astype(np.float32), data["b"].astype(np.float32)
        size = int(data["size"])
        self.input_shape = (self._w.shape[1], size, size)
        self.output_channels = self._w.shape[0]
        self.static_batch = self.options.get("static_batch")
        self.calls: list[int] = []
        cfg = ModelConfig(num_classes=self._w.shape[0])
        self.metadata = build_metadata(cfg, PreprocessConfig(size=size))

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(batch.shape[0])
        return (np.einsum("oc,nchw->nohw", self._w, batch) + self._b[None, :, None, None]).astype(np.float32)


def write_toy_model(path: Path, w: np.ndarray, b: np.ndarray, size: int = 96) -> Path:
    np.savez(path, w=np.asarray(w, np.float32), b=np.asarray(b, np.float32), size=size)
    return path
