"""Fault corpus, `export`, `compile` and `evaluate`: exit code, expected/found message, no traceback, nothing left
behind."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from faultkit import listing

from unetpp.core.runfolder import MANIFEST


# -- export / compile: refused before any work --------------------------------------------------------------------
@pytest.mark.parametrize("case", ["out_in_proc", "out_is_folder", "out_under_file", "out_is_checkpoint",
                                  "missing_checkpoint",
                                  "truncated_checkpoint", "text_checkpoint", "static_batch_zero", "opset_too_low"])
def test_export_refused(case: str, cli, random_checkpoint: Path, tmp_path: Path) -> None:
    ckpt, out, extra = random_checkpoint, tmp_path / "m.onnx", []
    if case == "out_in_proc":
        out, says = Path("/proc/unetpp_x.onnx"), ("cannot write /proc/unetpp_x.onnx", "expected a writable location")
    elif case == "out_is_folder":
        out, says = tmp_path, ("expected a file name", "found a folder")
    elif case == "out_under_file":
        (tmp_path / "f").write_text("x")
        out, says = tmp_path / "f" / "m.onnx", ("a file, where a folder is needed",)
    elif case == "out_is_checkpoint":
        ckpt = tmp_path / "c.pt"
        ckpt.write_bytes(random_checkpoint.read_bytes())
        out, says = ckpt, ("a file other than the input", "found the input")
    elif case == "missing_checkpoint":
        ckpt, says = tmp_path / "nope.pt", ("nope.pt",)
    elif case == "truncated_checkpoint":
        ckpt = tmp_path / "trunc.pt"
        ckpt.write_bytes(random_checkpoint.read_bytes()[:5000])
        says = ("trunc.pt",)
    elif case == "text_checkpoint":
        ckpt = tmp_path / "text.pt"
        ckpt.write_text("not a checkpoint")
        says = ("text.pt",)
    elif case == "static_batch_zero":
        extra, says = ["--static-batch", "0"], ("expected an integer >= 1, found 0",)
    else:
        extra, says = ["--opset", "3"], ("expected an ONNX opset from 9", "found 3",)
    before = listing(tmp_path)
    r = cli("export", ckpt, "-o", out, *extra)
    assert r.rc == 2 and "expected" in r.err and r.says(*says), r.err
    assert listing(tmp_path) == before


@pytest.mark.parametrize("case", ["out_in_proc", "out_is_model", "missing_model", "text_model"])
def test_compile_refused(case: str, cli, onnx_model: Path, tmp_path: Path) -> None:
    model, out = onnx_model, tmp_path / "c.onnx"
    if case == "out_in_proc":
        out, says = Path("/proc/unetpp_c.onnx"), ("expected a writable location",)
    elif case == "out_is_model":
        model = tmp_path / "m.onnx"
        model.write_bytes(onnx_model.read_bytes())
        out, says = model, ("a file other than the input",)
    elif case == "missing_model":
        model, says = tmp_path / "nope.onnx", ("nope.onnx",)
    else:
        model = tmp_path / "t.onnx"
        model.write_text("text")
        says = ("t.onnx",)
    before = listing(tmp_path)
    r = cli("compile", model, "--backend", "onnxruntime", "-o", out)
    assert r.rc == 2 and "expected" in r.err and r.says(*says), r.err
    assert listing(tmp_path) == before


# -- evaluate -------------------------------------------------------------------------------------------------------
@pytest.fixture()
def scored(tmp_path: Path) -> tuple[Path, Path]:
    """Results (<id>_0.bin logits, as infer writes them, with its manifest) and masks for ids a, b."""
    res, masks = tmp_path / "res", tmp_path / "masks"
    res.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for id_ in ("a", "b"):
        rng.standard_normal((1, 96, 96), dtype=np.float32).astype("<f4").tofile(res / f"{id_}_0.bin")
        cv2.imwrite(str(masks / f"{id_}.png"), (rng.random((96, 96)) > 0.5).astype(np.uint8) * 255)
    (res / MANIFEST).write_text(json.dumps({"state": "complete"}))
    return res, masks


def test_evaluate_reads_an_infer_run_folder(cli, scored: tuple[Path, Path], tmp_path: Path) -> None:
    r = cli("evaluate", *scored, "--csv", tmp_path / "per image é.csv")
    assert r.rc == 0 and "IoU: " in r.out and "images: 2" in r.out, r.err
    assert (tmp_path / "per image é.csv").read_text().count("\n") == 3
    assert "did not complete" not in r.err


@pytest.mark.parametrize("manifest, says", [
    ({"state": "partial", "command": "infer", "counts": {"failed": 1}}, "infer run that did not complete (state "
                                                                        "partial, 1 item(s) failed)"),
    ({"state": "running", "command": "predict"}, "predict run that did not complete (state running)"),
    (None, "unreadable unetpp-run.json")])
def test_evaluate_notes_an_unfinished_run_folder(manifest, says: str, cli, scored: tuple[Path, Path]) -> None:
    """A partial or killed run is scored on what it wrote, with a note saying so (exit 0: scoring worked)."""
    res, masks = scored
    (res / MANIFEST).write_text("{not json" if manifest is None else json.dumps(manifest))
    r = cli("evaluate", res, masks)
    assert r.rc == 0 and says in r.err and "images: 2" in r.out, r.err


@pytest.mark.parametrize("case", ["csv_in_proc", "csv_is_folder", "results_missing", "masks_missing",
                                  "ids_missing_result", "short_result", "text_mask", "missing_mask",
                                  "corrupt_summary", "mixed_modes", "instances_out_in_proc"])
def test_evaluate_refused(case: str, cli, scored: tuple[Path, Path], tmp_path: Path) -> None:
    res, masks = scored
    argv: list[object] = [res, masks]
    if case == "csv_in_proc":
        argv, says = [*argv, "--csv", "/proc/unetpp_x.csv"], ("cannot write /proc/unetpp_x.csv",)
    elif case == "csv_is_folder":
        argv, says = [*argv, "--csv", tmp_path], ("expected a file name", "found a folder")
    elif case == "results_missing":
        argv, says = [tmp_path / "nope", masks], ("nothing usable at",)
    elif case == "masks_missing":
        argv, says = [res, tmp_path / "nope"], ("masks folder", "nothing at")
    elif case == "ids_missing_result":
        (tmp_path / "ids.txt").write_text("a\r\nb\r\nc\r\n")
        argv, says = [*argv, "--ids", tmp_path / "ids.txt"], ("an output for every id", "none for c")
    elif case == "short_result":
        (res / "b_0.bin").write_bytes(b"\0" * 100)
        says = ("b_0.bin", "expected", "found 100 bytes")
    elif case == "text_mask":
        (masks / "a.png").write_text("not a png")
        says = ("a.png", "do not start with the PNG signature")
    elif case == "missing_mask":
        (masks / "b.png").unlink()
        says = ("<id>.png for every result", "none for b")
    elif case == "corrupt_summary":
        (tmp_path / "s.json").write_text("{not json")
        argv, says = [tmp_path / "s.json", masks], ("s.json",)
    elif case == "mixed_modes":
        argv, says = [*argv, "--instances", res], ("found both",)
    else:
        argv, says = ["--instances", res, "--gt", tmp_path, "-o", "/proc/unetpp_e"], ("expected",)
    before = listing(tmp_path)
    r = cli("evaluate", *argv)
    assert r.rc == 2 and "expected" in r.err and r.says(*says), r.err
    assert listing(tmp_path) == before
