"""The reader: a `unetpp predict` output folder (or one `_labels.png`) opens as Labels layers whose features are
the nucleus tables, above the images predict read when they exist; a table that does not match is refused."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

npe2 = pytest.importorskip("npe2", reason="napari (npe2) not installed: pip install 'unetpp[napari]'")

from unetpp.errors import InputError  # noqa: E402
from unetpp.napari.imagefiles import read_as_layer  # noqa: E402
from unetpp.napari.reader import get_reader  # noqa: E402

STEMS = ["dsb2018_fluorescence_9cdac287", "dsb2018_stained_af6b6173", "fluorescence16"]


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_folder_round_trip(predicted: Path, predict_inputs: Path, cli_labels) -> None:
    layers = npe2.read([str(predicted)], stack=False, plugin_name="unetpp")
    assert [(meta["name"], kind) for _, meta, kind in layers] == [
        (name, kind) for stem in STEMS for name, kind in ((stem, "image"), (f"{stem} nuclei", "labels"))]
    for stem, (image, _, _), (labels, meta, _) in zip(STEMS, layers[0::2], layers[1::2]):
        np.testing.assert_array_equal(image, read_as_layer(predict_inputs / f"{stem}.png"))
        np.testing.assert_array_equal(labels, cli_labels(stem).astype(np.int32))
        rows = _csv(predicted / f"{stem}_nuclei.csv")
        feats = meta["features"]
        assert list(feats["index"]) == list(feats["label"]) == [int(r["label"]) for r in rows]
        assert list(feats) == ["index", *rows[0].keys()]
        np.testing.assert_allclose(feats["centroid_y"], [float(r["centroid_y"]) for r in rows])
        assert feats["area_px"].dtype.kind == "i" and feats["centroid_y"].dtype.kind == "f"


def test_labels_alone_in_a_viewer(make_napari_viewer, predicted: Path, cli_labels, tmp_path: Path) -> None:
    # a run reviewed elsewhere: the outputs without the images (the summary's paths do not exist here)
    stem = STEMS[1]
    for suffix in ("_labels.png", "_nuclei.csv"):
        shutil.copy(predicted / f"{stem}{suffix}", tmp_path / f"{stem}{suffix}")
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / f"{stem}_labels.png"), plugin="unetpp")
    assert [layer.name for layer in viewer.layers] == [f"{stem} nuclei"]
    layer = viewer.layers[0]
    np.testing.assert_array_equal(layer.data, cli_labels(stem))
    assert len(layer.features) == int(cli_labels(stem).max()) and "area_px" in layer.features
    assert get_reader(str(tmp_path / "other.png")) is None and get_reader(str(predicted / "counts.csv")) is None


def test_a_table_that_does_not_match_is_refused(predicted: Path, tmp_path: Path) -> None:
    stem = STEMS[0]
    shutil.copy(predicted / f"{stem}_labels.png", tmp_path / f"{stem}_labels.png")
    lines = (predicted / f"{stem}_nuclei.csv").read_text().splitlines()
    (tmp_path / f"{stem}_nuclei.csv").write_text("\n".join(lines[:-1]) + "\n")  # one nucleus short
    reader = get_reader(str(tmp_path))
    assert reader is not None
    with pytest.raises(InputError, match=f"{stem}_nuclei.csv beside {stem}_labels.png"):
        reader(str(tmp_path))
