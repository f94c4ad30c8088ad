"""Batching as ais_bench: sorted, grouped, a short last batch padded with copies that are never written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unetpp.errors import InputError
from unetpp.infer.batching import check_sizes, gather_inputs, make_batches, output_stem


def _write(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, n in enumerate(names):
        p = folder / n
        np.full((3, 96, 96), i, "<f4").tofile(p)
        paths.append(p)
    return paths


def test_groups_and_padding() -> None:
    files = [Path(f"f{i:03d}.bin") for i in range(134)]
    batches = make_batches(files, 16)
    assert len(batches) == 9  # 8 full batches of 16 + 6 (134 = 8*16 + 6)
    assert [b.n_pad for b in batches] == [0] * 8 + [10]
    assert [len(b.files) for b in batches][-1] == 6 and all(b.size == 16 for b in batches)
    assert [f for b in batches for f in b.files] == files
    assert [len(b.files) for b in make_batches(files, 1)] == [1] * 134
    with pytest.raises(InputError, match="--batchsize: expected a positive integer, found 0"):
        make_batches(files, 0)


def test_padded_batch_repeats_a_real_file(tmp_path: Path) -> None:
    files = _write(tmp_path, ["c.bin", "a.bin", "b.bin"])
    batch = make_batches(gather_inputs([tmp_path]), 4)[0]
    assert [p.name for p in batch.files] == ["a.bin", "b.bin", "c.bin"] and batch.n_pad == 1
    x = batch.load()
    assert x.shape == (4, 3, 96, 96) and x.dtype == np.float32
    assert x[0, 0, 0, 0] == 1 and x[1, 0, 0, 0] == 2 and x[2, 0, 0, 0] == 0  # a=1, b=2, c=0 as written
    assert np.array_equal(x[3], x[2])
    assert len(files) == 3


def test_output_stem_and_unique_names(tmp_path: Path) -> None:
    assert output_stem(Path("dir/abc.def.bin")) == "abc"
    _write(tmp_path / "x", ["s.bin"])
    _write(tmp_path / "y", ["s.npy.bin"])
    with pytest.raises(InputError, match="both named 's'"):
        gather_inputs([tmp_path / "x", tmp_path / "y"])


def test_sizes_checked(tmp_path: Path) -> None:
    (tmp_path / "bad.bin").write_bytes(b"\0" * 1000)
    with pytest.raises(InputError, match="expected 110592 bytes .*found 1000 bytes"):
        check_sizes([tmp_path / "bad.bin"])
    with pytest.raises(InputError, match="nothing at"):
        gather_inputs([tmp_path / "missing"])
