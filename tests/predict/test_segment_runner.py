"""Which files `unetpp predict` takes from its arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from unetpp.errors import InputError
from unetpp.predict.folder import gather_images, gather_sources


def _touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


def test_files_folders_dsb_layout_and_ids(tmp_path: Path):
    flat = tmp_path / "flat"
    a, b = _touch(flat / "a.png"), _touch(flat / "b.txt")
    _touch(flat / ".hidden.png")
    (flat / "sub").mkdir()
    assert gather_images([flat]) == [(a, "a")]  # not an image by its suffix: skipped (gather_sources notes it)
    assert gather_sources([flat]).skipped == [b]
    dsb = tmp_path / "root" / "stage1_train"
    s1, s2 = _touch(dsb / "id1" / "images" / "id1.png"), _touch(dsb / "id2" / "images" / "id2.png")
    assert gather_images([dsb]) == [(s1, "id1"), (s2, "id2")]
    assert gather_images([dsb.parent]) == [(s1, "id1"), (s2, "id2")]  # a dataset root holding stage1_train
    got = gather_images([dsb.parent], ids=["id2", "nope"])
    assert got[0] == (s2, "id2") and got[1][1] == "nope" and not got[1][0].exists()  # reported per image later
    assert gather_images([flat], ids=["a"]) == [(a, "a")]  # a flat folder of <id>.<suffix>
    with pytest.raises(InputError, match="missing.png: expected an existing image file or folder"):
        gather_images([a, tmp_path / "missing.png"])
    assert gather_images([a, flat, tmp_path / "flat" / ".." / "flat" / "a.png"]) == [(a, "a")]  # once
    with pytest.raises(InputError, match="with --ids"):
        gather_images([a], ids=["a"])
