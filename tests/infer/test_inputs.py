"""The inputs of `unetpp infer`: sorted, unique names, sizes screened (a bad file is reported, not fatal)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unetpp.errors import InputError
from unetpp.infer.inputs import gather_inputs, output_stem, screen_sizes


def _write(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, n in enumerate(names):
        p = folder / n
        np.full((3, 96, 96), i, "<f4").tofile(p)
        paths.append(p)
    return paths


def test_output_stem_and_unique_names(tmp_path: Path) -> None:
    assert output_stem(Path("dir/abc.def.bin")) == "abc"
    _write(tmp_path / "x", ["s.bin"])
    _write(tmp_path / "y", ["s.npy.bin"])
    with pytest.raises(InputError, match="both named 's'"):
        gather_inputs([tmp_path / "x", tmp_path / "y"])


def test_sizes_checked(tmp_path: Path) -> None:
    (tmp_path / "bad.bin").write_bytes(b"\0" * 1000)
    good, bad = screen_sizes([tmp_path / "bad.bin"])
    assert good == [] and "expected 110592 bytes" in bad[tmp_path / "bad.bin"] and "found 1000 bytes" in bad[
        tmp_path / "bad.bin"]
    with pytest.raises(InputError, match="nothing at"):
        gather_inputs([tmp_path / "missing"])


def test_gathered_in_sorted_order(tmp_path: Path) -> None:
    _write(tmp_path, ["c.bin", "a.bin", "b.bin"])
    assert [p.name for p in gather_inputs([tmp_path])] == ["a.bin", "b.bin", "c.bin"]
