"""Open `unetpp predict` outputs for review: `<stem>_labels.png` with its `<stem>_nuclei.csv` becomes a Labels
layer whose features are the table; a folder opens every such pair in it, each above its source image when the
folder's predict_summary.json names one that exists here (a run on a cluster reviewed on a laptop opens the
labels alone)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from unetpp.errors import InputError, expected_found
from unetpp.napari.imagefiles import read_as_layer
from unetpp.predict.folder import SUMMARY
from unetpp.predict.image import OUTPUT_SUFFIXES

LABELS, TABLE = OUTPUT_SUFFIXES["labels"], OUTPUT_SUFFIXES["nuclei"]
LayerData = tuple[Any, dict[str, Any], str]


def _table_for(labels_png: Path) -> Path:
    return labels_png.with_name(labels_png.name[: -len(LABELS)] + TABLE)


def labels_files(path: str | Path | list) -> list[Path]:
    """The `_labels.png` files (with their table beside them) that `path` (a file, folder or list) holds."""
    if isinstance(path, (list, tuple)):
        return [f for p in path for f in labels_files(p)]
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.glob("*" + LABELS) if _table_for(f).is_file())
    if p.name.endswith(LABELS) and p.is_file() and _table_for(p).is_file():
        return [p]
    return []


def get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """npe2's reader hook: a reader when the path holds predict outputs, else None (another reader may)."""
    return read_predict_outputs if labels_files(path) else None


def read_table(path: Path) -> dict[str, np.ndarray]:
    """predict's nucleus table as columns (integers where every value is one, else floats)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][:1] != ["label"]:
        raise InputError(expected_found(f"nucleus table {path}", "a CSV whose first column is 'label'",
                                        f"header {rows[0] if rows else 'none (empty file)'}"))
    header, body = rows[0], rows[1:]
    cols: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        values = [r[j] for r in body]
        try:
            cols[name] = np.asarray([int(v) for v in values], np.int64)
        except ValueError:
            try:
                cols[name] = np.asarray([float(v) for v in values], np.float64)
            except ValueError:
                raise InputError(expected_found(f"nucleus table {path}, column {name!r}", "numbers",
                                                f"{values[:3]}")) from None
    return cols


def _sources(folder: Path) -> dict[str, Path]:
    """stem -> the image predict read, from the run summary, where that file exists on this machine."""
    try:
        summary = json.loads((folder / SUMMARY).read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for rec in summary.get("images", []):
        image = rec.get("image")
        if rec.get("stem") and image and Path(image).is_file():
            out[rec["stem"]] = Path(image)
    return out


def read_one(labels_png: Path, sources: dict[str, Path] | None = None) -> list[LayerData]:
    stem = labels_png.name[: -len(LABELS)]
    labels = cv2.imread(str(labels_png), cv2.IMREAD_UNCHANGED)
    if labels is None or labels.ndim != 2:
        raise InputError(expected_found(f"labels {labels_png}", "a one-channel PNG (uint16 ids)",
                                        "an unreadable file" if labels is None else f"shape {labels.shape}"))
    table = read_table(_table_for(labels_png))
    ids = np.unique(labels)
    ids = ids[ids > 0]
    if not np.array_equal(np.sort(table["label"]), ids):
        raise InputError(expected_found(f"{_table_for(labels_png).name} beside {labels_png.name}",
                                        f"one row per label of the PNG ({ids.size})",
                                        f"{table['label'].size} rows with other labels"))
    layers: list[LayerData] = []
    source = (sources or {}).get(stem)
    if source is not None:
        image = read_as_layer(source)
        if image.shape[:2] == labels.shape:
            layers.append((image, {"name": stem, "rgb": image.ndim == 3}, "image"))
    features = {"index": table["label"], **table}
    layers.append((labels.astype(np.int32), {"name": f"{stem} nuclei", "features": features}, "labels"))
    return layers


def read_predict_outputs(path: str | list[str]) -> list[LayerData]:
    layers: list[LayerData] = []
    for f in labels_files(path):
        layers += read_one(f, _sources(f.parent))
    return layers
