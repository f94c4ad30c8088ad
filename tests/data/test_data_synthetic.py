"""The generated stand-in set: original DSB2018 layout, deterministic, labelled as synthetic."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from unetpp.data.paths import read_ids, resolve_data_dir
from unetpp.data.prepare import prepare_dsb2018
from unetpp.data.synthetic import make_synthetic_dsb
from unetpp.errors import InputError


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_split_and_note(tmp_path):
    root = make_synthetic_dsb(tmp_path / "syn", n=6, seed=1, n_val=2)
    assert resolve_data_dir(root) == root
    val, train = read_ids(root / "val_ids.txt"), read_ids(root / "train_ids.txt")
    ids = sorted(p.name for p in (root / "stage1_train").iterdir())
    assert len(val) == 2 and len(train) == 4 and sorted(val + train) == ids
    note = (root / "SYNTHETIC.md").read_text()
    assert "not DSB2018" in note and "generated" in note
    for id_ in ids:
        img = cv2.imread(str(root / "stage1_train" / id_ / "images" / f"{id_}.png"), cv2.IMREAD_UNCHANGED)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 4 and img.shape[0] == 256
        masks = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in (root / "stage1_train" / id_ / "masks").iterdir()]
        assert len(masks) >= 2
        stack = np.stack(masks)
        assert set(np.unique(stack)) <= {0, 255} and stack.shape[1:] == img.shape[:2]
        assert (stack > 0).sum(axis=0).max() == 1  # instances never overlap
        inside, outside = img[..., 1][stack.max(0) > 0].mean(), img[..., 1][stack.max(0) == 0].mean()
        assert inside > outside + 40  # bright nuclei on a dark background


def test_deterministic_for_a_seed(tmp_path):
    a = _tree(make_synthetic_dsb(tmp_path / "a", n=3, seed=7))
    b = _tree(make_synthetic_dsb(tmp_path / "b", n=3, seed=7))
    c = _tree(make_synthetic_dsb(tmp_path / "c", n=3, seed=8))
    assert a == b
    assert a != c
    make_synthetic_dsb(tmp_path / "a", n=3, seed=7)  # regenerating the same set in place is allowed
    assert _tree(tmp_path / "a") == a


def test_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "real" / "stage1_train" / "someid").mkdir(parents=True)
    with pytest.raises(InputError, match="other entries"):
        make_synthetic_dsb(tmp_path / "real", n=3)
    with pytest.raises(InputError, match="at least 2"):
        make_synthetic_dsb(tmp_path / "x", n=1)


def test_prepare_accepts_it(tmp_path):
    root = make_synthetic_dsb(tmp_path / "syn", n=3, seed=2)
    assert prepare_dsb2018(root / "stage1_train", tmp_path / "d96", progress=False) == 3
    masks = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in (tmp_path / "d96" / "masks" / "0").iterdir()]
    assert all(m.shape == (96, 96) and m.max() == 255 for m in masks)
