"""The guide's fixed split ships with unetpp, so a plain download of stage1_train (Kaggle, BBBC038) works with
--data: a dataset root without val_ids.txt / train_ids.txt falls back to the shipped files."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from importlib.resources import files
from pathlib import Path

import pytest

from unetpp.cli.main import main
from unetpp.data.paths import read_ids, shipped_split_file, split_ids, split_ids_file
from unetpp.errors import InputError

# The blob ids of the files created by Ascend ModelZoo's nested_unet.diff (its `index` lines).
GUIDE_IOU = 0.8433  # the reference's figure for the shipped guide checkpoint on the 134 val ids
GUIDE_BLOBS = {"val": "2921bb6bbde725d708461b00348cdee4aa24b2c8", "train": "04e1163d539ed0a51a2d3de85684d2e91becd388"}


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_shipped_split_is_the_guides_byte_for_byte() -> None:
    for split, blob in GUIDE_BLOBS.items():
        assert _git_blob_id(shipped_split_file(split).read_bytes()) == blob
    val, train = read_ids(shipped_split_file("val")), read_ids(shipped_split_file("train"))
    assert (len(val), len(train)) == (134, 536)
    assert not set(val) & set(train)


def test_shipped_split_names_every_sample_of_the_real_data(dsb_root: Path) -> None:
    for split in GUIDE_BLOBS:
        assert shipped_split_file(split).read_bytes() == (dsb_root / f"{split}_ids.txt").read_bytes()
    every = {p.name for p in (dsb_root / "stage1_train").iterdir() if p.is_dir()}
    assert set(read_ids(shipped_split_file("val"))) | set(read_ids(shipped_split_file("train"))) == every


def _only_stage1_train(src: Path, dst: Path) -> Path:
    dst.mkdir()
    (dst / "stage1_train").symlink_to((src / "stage1_train").resolve(), target_is_directory=True)
    return dst


def test_a_root_with_only_stage1_train_uses_the_shipped_split(dsb_root: Path, tmp_path: Path) -> None:
    root = _only_stage1_train(dsb_root, tmp_path / "kaggle")
    assert split_ids_file(root, "val") == shipped_split_file("val")
    assert split_ids(root, "val") == read_ids(dsb_root / "val_ids.txt")
    assert split_ids(root, "train") == read_ids(dsb_root / "train_ids.txt")


def test_a_roots_own_split_wins(synthetic_root: Path) -> None:
    assert split_ids_file(synthetic_root, "val") == synthetic_root / "val_ids.txt"
    assert split_ids(synthetic_root, "val") == read_ids(synthetic_root / "val_ids.txt")


def test_other_data_without_a_split_is_refused_naming_the_fix(synthetic_root: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    root = _only_stage1_train(synthetic_root, tmp_path / "other")
    with pytest.raises(InputError, match=r"134 of them missing.*put your own val_ids.txt"):
        split_ids(root, "val")
    rc = main(["run", "--data", str(root), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "val_ids.txt" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "report.json").exists()


@pytest.mark.published
@pytest.mark.data
def test_main_job_on_a_plain_stage1_train_download(dsb_root: Path, tmp_path: Path) -> None:
    """`unetpp run --data DIR` where DIR holds only stage1_train (a plain download): the guide's 134 val ids are
    scored and the shipped guide model (its card's file) reaches the IoU the reference publishes, 0.8433 to four
    decimals (about 30 s on 2 cores)."""
    root = _only_stage1_train(dsb_root, tmp_path / "kaggle")
    out = tmp_path / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(["run", "--data", str(root), "-o", str(out), "--threads", "2"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["synthetic_data"] is False and report["n_images"] == 134
    card = json.loads(Path(files("unetpp.weights").joinpath("cards.json")).read_text())  # type: ignore[arg-type]
    assert report["checkpoint_sha256"] == card["guide"]["sha256"]
    assert round(report["iou_guide"], 4) == card["guide"]["figures"]["guide_iou_96px"] == GUIDE_IOU
    assert sorted(p.stem for p in (out / "prep_dataset").glob("*.bin")) == sorted(read_ids(dsb_root / "val_ids.txt"))
