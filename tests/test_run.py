"""The main job end to end: `unetpp run` on the synthetic set it generates where no dataset is found (every stage
for real: data, export, preprocess, infer, evaluate, report), checked against an IoU computed here from the files."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from unetpp.cli.main import main
from unetpp.core.runfolder import MANIFEST
from unetpp.data.paths import looked_in, read_ids
from unetpp.run import SYNTHETIC_BANNER


def _guide_iou(results: Path, masks: Path, ids: list[str]) -> float:
    """The guide's IoU, written out independently: logits > 0.5 against mask > 127, per image, then the mean."""
    scores = []
    for i in ids:
        logits = np.fromfile(results / f"{i}_0.bin", dtype="<f4").reshape(96, 96)
        gt = cv2.imread(str(masks / f"{i}.png"), cv2.IMREAD_GRAYSCALE) > 127
        pred = logits > 0.5
        scores.append(((pred & gt).sum() + 1e-5) / ((pred | gt).sum() + 1e-5))
    return float(np.mean(scores))


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str, str]:
    work = tmp_path_factory.mktemp("main_job")
    mp = pytest.MonkeyPatch()
    mp.delenv("UNETPP_DATA", raising=False)
    mp.chdir(work)  # no ./data/dsb2018 here: the job generates its synthetic set
    try:
        import contextlib
        import io

        where = looked_in()
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main(["run", "-o", str(work / "runs" / "main"), "--threads", "2"])
    finally:
        mp.undo()
    return work / "runs" / "main", rc, buf.getvalue(), where


def test_synthetic_main_job_runs_every_stage_and_says_so(synthetic_run: tuple[Path, int, str, str]) -> None:
    out, rc, printed, where = synthetic_run
    assert rc == 0, printed
    assert "UNETPP_DATA not set" in where and "data/dsb2018" in where and where in printed
    ids = read_ids(out / "synthetic_dsb" / "val_ids.txt")
    assert len(ids) == 24 // 5
    report = json.loads((out / "report.json").read_text())
    assert report["synthetic_data"] is True and report["n_images"] == len(ids)
    assert SYNTHETIC_BANNER in (out / "report.md").read_text() and "SYNTHETIC DATA" in printed
    # every stage left its files: prepared images and masks, the ONNX export with its parity, inputs, outputs
    assert sorted(p.stem for p in (out / "prep_dataset").glob("*.bin")) == sorted(ids)
    assert all((out / "prep_dataset" / f"{i}.bin").stat().st_size == 3 * 96 * 96 * 4 for i in ids)
    parity = json.loads((out / "nested_unet.onnx.parity.json").read_text())
    assert parity["within_atol"] and report["export_parity"]["max_abs_diff"] == parity["max_abs_diff"]
    results = out / "results" / "val"
    assert sorted(p.name for p in results.glob("*_0.bin")) == sorted(f"{i}_0.bin" for i in ids)
    # the reported IoU is the one computed here from the written logits and masks
    iou = _guide_iou(results, out / "dsb2018_96" / "masks" / "0", ids)
    assert report["iou_guide"] == pytest.approx(iou, abs=1e-6)
    assert f"IoU: {iou:.4f}" in printed
    assert iou > 0.5  # bright blurred discs on a dark ground: the shipped model finds them
    assert report["throughput_compute"] > 0 and report["throughput_end_to_end"] > 0
    # the job's folder is a run folder listing what it wrote
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["command"] == "run" and manifest["state"] == "complete"
    assert {"report.md", "report.json", "nested_unet.onnx", f"prep_dataset/{ids[0]}.bin",
            "synthetic_dsb/val_ids.txt"} <= set(manifest["files"])


def test_synthetic_main_job_rerun_gives_the_same_report(synthetic_run: tuple[Path, int, str, str],
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out, rc, _, _ = synthetic_run
    assert rc == 0
    first = json.loads((out / "report.json").read_text())
    monkeypatch.delenv("UNETPP_DATA", raising=False)
    monkeypatch.chdir(out.parent.parent)
    (out / "notes.txt").write_text("the user's notes in the run folder")
    assert main(["run", "-o", str(out), "--threads", "2"]) == 0
    again = json.loads((out / "report.json").read_text())
    assert again["iou_guide"] == first["iou_guide"] and again["onnx"] == first["onnx"]
    assert "export ->" not in capsys.readouterr().out  # the export is reused (same checkpoint SHA-256)
    assert (out / "notes.txt").read_text() == "the user's notes in the run folder"


def test_real_data_after_synthetic_starts_the_folder_clean(synthetic_run: tuple[Path, int, str, str],
                                                           synthetic_root: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The README's order: `make run` without data (synthetic), then with the data, into the same folder. The
    synthetic ids must not stay beside the real ones (`unetpp.evaluate` on the folder would score both)."""
    import shutil

    from unetpp.eval.evaluate import evaluate

    out = tmp_path / "runs" / "main"
    shutil.copytree(synthetic_run[0], out)
    (out / "notes.txt").write_text("the user's notes")
    synthetic_ids = read_ids(out / "synthetic_dsb" / "val_ids.txt")
    real_ids = read_ids(synthetic_root / "val_ids.txt")  # another generated set, given as a dataset (--data)
    assert not set(synthetic_ids) & set(real_ids)
    capsys.readouterr()
    assert main(["run", "--data", str(synthetic_root), "-o", str(out), "--threads", "2"]) == 0
    printed = capsys.readouterr().out
    assert "holds a run on the synthetic set" in printed and "starts clean" in printed, printed
    report = json.loads((out / "report.json").read_text())
    assert report["synthetic_data"] is False and report["n_images"] == len(real_ids)
    for folder, pattern in (("results/val", "*_0.bin"), ("dsb2018_96/masks/0", "*.png"), ("prep_dataset", "*.bin")):
        stems = sorted(p.name.split(".")[0].removesuffix("_0") for p in (out / folder).glob(pattern))
        assert stems == sorted(real_ids), folder
    assert not (out / "synthetic_dsb").exists() and (out / "notes.txt").read_text() == "the user's notes"
    scores = evaluate(out / "results" / "val", out / "dsb2018_96" / "masks" / "0")  # the README's line, no ids
    assert scores["n_images"] == report["n_images"] and scores["iou_guide"] == pytest.approx(report["iou_guide"])
    # and back: a synthetic run into the real run's folder starts clean too
    monkeypatch.delenv("UNETPP_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "-o", str(out), "--threads", "2"]) == 0
    assert "holds a run on the dataset at" in capsys.readouterr().out
    assert sorted(p.name.removesuffix("_0.bin") for p in (out / "results" / "val").glob("*_0.bin")) == \
        sorted(synthetic_ids)
