"""File > Open Sample > unetpp: two small real nuclei images shipped in the package (DSB2018, CC0;
samples/SOURCE.md), so the plugin can be tried offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unetpp.napari.imagefiles import read_as_layer

HERE = Path(__file__).parent / "samples"
FLUORESCENCE = HERE / "dsb2018_fluorescence_9cdac287.png"
STAINED = HERE / "dsb2018_stained_af6b6173.png"


def _layer(path: Path) -> list[tuple[Any, dict[str, Any], str]]:
    data = read_as_layer(path)
    return [(data, {"name": path.stem, "rgb": data.ndim == 3}, "image")]


def fluorescence() -> list[tuple[Any, dict[str, Any], str]]:
    """A 256x256 fluorescence image, 44 nuclei in the ground truth."""
    return _layer(FLUORESCENCE)


def stained() -> list[tuple[Any, dict[str, Any], str]]:
    """A 256x320 stained tissue image, 37 nuclei in the ground truth."""
    return _layer(STAINED)
