"""Fault corpus, nothing outside `-o`: an option that names a file or folder inside the output folder (infer's
--output-dirname, ids that become output stems in predict/prepare/preprocess/evaluate/run) cannot reach out of it
with `..`, an absolute path or a separator: refused before any work, exit 2, one line, nothing made."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from faultkit import listing, write_png

from unetpp.data.paths import read_ids
from unetpp.errors import InputError


def _one_line_refusal(r) -> None:
    assert r.rc == 2 and len(r.err.strip().splitlines()) == 1, r.err


@pytest.mark.parametrize("dirname", ["../escaped", "{tmp}/absolute", "a/b", "..", "."])
def test_infer_output_dirname_stays_inside_the_output_folder(dirname: str, cli, bins: Path, onnx_model: Path,
                                                            tmp_path: Path) -> None:
    inp = Path(shutil.copytree(bins, tmp_path / "in"))
    dirname = dirname.format(tmp=tmp_path)
    before = listing(tmp_path)
    r = cli("infer", "--model", onnx_model, "--input", inp, "-o", tmp_path / "o", "--output-dirname", dirname,
            "--no-progress")
    _one_line_refusal(r)
    assert r.says("--output-dirname", "expected a plain folder name"), r.err
    assert listing(tmp_path) == before and not (tmp_path / "o").exists()


@pytest.mark.parametrize("bad_id", ["../evil", "/tmp/evil", "sub/evil", ".."])
def test_predict_ids_that_are_paths_are_refused(bad_id: str, cli, onnx_model: Path, tmp_path: Path) -> None:
    root = tmp_path / "ds" / "stage1_train"
    write_png(root / "s1" / "images" / "s1.png")
    write_png(tmp_path / "ds" / "evil" / "images" / "evil.png")  # what `../evil` would reach from stage1_train
    write_png(root / "sub" / "evil" / "images" / "evil.png")
    (tmp_path / "ids.txt").write_text(f"s1\n{bad_id}\n")
    before = listing(tmp_path)
    r = cli("predict", tmp_path / "ds", "--ids", tmp_path / "ids.txt", "-o", tmp_path / "o", "--model", onnx_model,
            "--no-progress")
    _one_line_refusal(r)
    assert r.says("ids file", "each a plain name", "on line 2"), r.err
    assert listing(tmp_path) == before and not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["prepare", "preprocess", "evaluate"])
def test_ids_that_are_paths_are_refused_by_every_command(command: str, cli, tmp_path: Path) -> None:
    (tmp_path / "ids.txt").write_text("a\n../b\n")
    with pytest.raises(InputError, match=r"expected one id per line, each a plain name, found '../b'"):
        read_ids(tmp_path / "ids.txt")
    (tmp_path / "stage1_train").mkdir()
    argv = {"prepare": ["prepare", tmp_path / "stage1_train", tmp_path / "o"],
            "preprocess": ["preprocess", tmp_path / "stage1_train", tmp_path / "o"],
            "evaluate": ["evaluate", tmp_path, tmp_path]}[command]
    r = cli(*argv, "--ids", tmp_path / "ids.txt")
    assert r.rc == 2 and "../b" in r.err and not (tmp_path / "o").exists(), r.err
