"""Fault corpus, `unetpp predict`: exit code, expected/found message, no traceback, state of the output folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from faultkit import kill_midway_then_rerun, listing, write_png

from unetpp.core.runfolder import LOCK, MANIFEST

OUTS = ("_labels.png", "_mask.png", "_nuclei.csv")


def _predict(cli, model: Path, *argv: object):
    return cli("predict", *argv, "--model", model, "--no-progress", "--threads", "2")


def _outputs(stems: list[str]) -> list[str]:
    return sorted([f"{s}{o}" for s in stems for o in OUTS] + ["counts.csv", "predict_summary.json", MANIFEST])


# -- bad image files fail alone (exit 1), the others complete ----------------------------------------------------
def _jpeg_bytes() -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((32, 40, 3), 90, np.uint8))
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("name, content, says", [
    ("noise.png", bytes(range(256)) * 4, ("noise.png", "expected")),
    ("zero.png", b"", ("zero.png", "empty")),
    ("text.png", b"just some text, not an image\n", ("text.png", "expected")),
    ("trunc.png", None, ("trunc.png", "expected")),
    ("nan.tif", "nan", ("nan.tif", "expected finite numbers", "1 NaN")),
    ("inf.tif", "inf", ("inf.tif", "expected finite numbers", "2 infinite")),
])
def test_bad_image_fails_alone(name: str, content: bytes | None, says: tuple, cli, images: Path, onnx_model: Path,
                               tmp_path: Path) -> None:
    if content is None:
        content = (images / "one.png").read_bytes()[:100]
    if isinstance(content, str):  # a float TIFF with non-finite values
        img = np.linspace(0, 1, 40 * 56, dtype=np.float32).reshape(40, 56)
        img[3, 4] = np.nan if content == "nan" else np.inf
        img[5, 6] = np.nan if content == "nan" else -np.inf
        if content == "nan":
            img[5, 6] = 0.5
        assert cv2.imwrite(str(images / name), img)
    else:
        (images / name).write_bytes(content)
    r = _predict(cli, onnx_model, images, "-o", tmp_path / "o")
    assert r.rc == 1 and r.says(*says) and "failures (1)" in r.out, r.out + r.err
    assert listing(tmp_path / "o") == _outputs(["one", "two"])
    assert json.loads((tmp_path / "o" / MANIFEST).read_text())["state"] == "partial"


def test_jpeg_named_png_is_read_by_its_content(cli, images: Path, onnx_model: Path, tmp_path: Path) -> None:
    (images / "really_a_jpeg.png").write_bytes(_jpeg_bytes())
    r = _predict(cli, onnx_model, images, "-o", tmp_path / "o")
    assert r.rc == 0, r.err
    assert listing(tmp_path / "o") == _outputs(["one", "really_a_jpeg", "two"])


def test_missing_file_among_inputs_is_refused_before_anything(cli, images: Path, onnx_model: Path,
                                                             tmp_path: Path) -> None:
    before = listing(tmp_path)
    r = _predict(cli, onnx_model, images / "one.png", tmp_path / "gone.png", "-o", tmp_path / "o")
    assert r.rc == 2 and r.says("gone.png", "expected an existing image file or folder", "nothing there"), r.err
    assert listing(tmp_path) == before and not (tmp_path / "o").exists()


# -- refused before any work: exit 2, nothing written -----------------------------------------------------------
@pytest.mark.parametrize("case", ["out_is_input", "out_inside_input", "out_contains_input", "out_in_proc",
                                  "text_model", "half_size_model", "missing_ids_file", "empty_ids_file",
                                  "duplicate_ids", "binary_ids_file"])
def test_refused_before_any_work(case: str, cli, images: Path, onnx_model: Path, half_size_onnx: Path,
                                 tmp_path: Path) -> None:
    model = onnx_model
    ids = tmp_path / "ids.txt"
    argv: list[object] = [images, "-o", tmp_path / "o"]
    if case == "out_is_input":
        argv, says = [images, "-o", images], ("the input folder itself",)
    elif case == "out_inside_input":
        argv, says = [images, "-o", images / "pred"], ("inside the input folder",)
    elif case == "out_contains_input":
        argv, says = [images, "-o", tmp_path], ("contains the input folder",)
    elif case == "out_in_proc":
        argv, says = [images, "-o", "/proc/unetpp_x/o"], ("/proc/unetpp_x", "expected a folder")
    elif case == "text_model":
        model = tmp_path / "m.onnx"
        model.write_text("not a model")
        says = ("a text file",)
    elif case == "half_size_model":
        model, says = half_size_onnx, ("expected (N, C, 96, 96)", "found (?, 3, 48, 48)")
    elif case == "missing_ids_file":
        argv, says = [*argv, "--ids", ids], ("ids file", "expected a readable text file")
    elif case == "empty_ids_file":
        ids.write_text("\n\n")
        argv, says = [*argv, "--ids", ids], ("expected one id per line", "found no ids")
    elif case == "duplicate_ids":
        ids.write_text("one\ntwo\none\n")
        argv, says = [*argv, "--ids", ids], ("expected each id once", "'one' on lines 1 and 3")
    else:
        ids.write_bytes(b"\xff\xfe\x00\x01binary")
        argv, says = [*argv, "--ids", ids], ("expected UTF-8 text", "binary data")
    before = listing(tmp_path)
    r = _predict(cli, model, *argv)
    assert r.rc == 2 and "expected" in r.err and r.says(*says), r.err
    assert listing(tmp_path) == before


# -- ids files: CRLF, blank lines, missing ids --------------------------------------------------------------------
@pytest.fixture()
def samples(tmp_path: Path) -> Path:
    """A stage1_train-like root: <id>/images/<id>.png for ids s1, s2."""
    root = tmp_path / "stage1_train"
    for i, id_ in enumerate(("s1", "s2")):
        write_png(root / id_ / "images" / f"{id_}.png", seed=i)
    return root


def test_ids_with_crlf_and_blank_lines(cli, samples: Path, onnx_model: Path, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"s1\r\n\r\n  \r\ns2\r\n")
    r = _predict(cli, onnx_model, samples, "--ids", ids, "-o", tmp_path / "o")
    assert r.rc == 0, r.err
    assert listing(tmp_path / "o") == _outputs(["s1", "s2"])


def test_ids_naming_missing_samples_fail_alone(cli, samples: Path, onnx_model: Path, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("s1\nghost\n")
    r = _predict(cli, onnx_model, samples, "--ids", ids, "-o", tmp_path / "o")
    assert r.rc == 1 and r.says("ghost", "expected"), r.out
    assert listing(tmp_path / "o") == _outputs(["s1"])


# -- never its own outputs; run folder rules -----------------------------------------------------------------------
def test_own_outputs_in_an_input_folder_are_not_inputs(cli, images: Path, onnx_model: Path, tmp_path: Path) -> None:
    assert _predict(cli, onnx_model, images, "-o", tmp_path / "o1", "--overlays", "--save-prob").rc == 0
    for f in (tmp_path / "o1").iterdir():
        if f.is_file():
            shutil.copy(f, images / f.name)
    r = _predict(cli, onnx_model, images, "-o", tmp_path / "o2")
    assert r.rc == 0, r.out + r.err
    assert json.loads((tmp_path / "o2" / "predict_summary.json").read_text())["n_images"] == 2


def test_other_settings_refused_then_overwritten(cli, images: Path, onnx_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert _predict(cli, onnx_model, images, "-o", out).rc == 0
    before = {n: (out / n).read_bytes() for n in listing(out) if n.endswith(".png")}
    r = _predict(cli, onnx_model, images, "-o", out, "--threshold", "0.7", "--batch-size", "4")
    assert r.rc == 2 and r.says("options.batch", "options.threshold", "--overwrite"), r.err
    assert {n: (out / n).read_bytes() for n in before} == before
    r = _predict(cli, onnx_model, images, "-o", out, "--threshold", "0.7", "--batch-size", "4", "--overwrite")
    assert r.rc == 0 and r.says("replacing"), r.err
    assert json.loads((out / MANIFEST).read_text())["settings"]["options"]["threshold"] == 0.7
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_rerun_same_settings_skips_complete_images(cli, images: Path, onnx_model: Path, tmp_path: Path) -> None:
    assert _predict(cli, onnx_model, images, "-o", tmp_path / "o").rc == 0
    r = cli("predict", images, "--model", onnx_model, "--no-progress", "--threads", "1", "-o", tmp_path / "o")
    assert r.rc == 0 and "skipped 2 already complete" in r.out, r.out
    r = _predict(cli, onnx_model, images, "-o", tmp_path / "o", "--no-resume")
    assert r.rc == 0 and "predicted 2 image(s), skipped 0" in r.out, r.out


def test_live_lock_refuses_a_second_run(cli, images: Path, onnx_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / LOCK).write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "started": "now"}))
    r = _predict(cli, onnx_model, images, "-o", out)
    assert r.rc == 2 and r.says("expected no other unetpp run", "a run in progress"), r.err
    assert listing(out) == [LOCK]


def test_unicode_and_spaces(cli, images: Path, onnx_model: Path, tmp_path: Path) -> None:
    src = tmp_path / "images à voir"
    shutil.copytree(images, src)
    os.rename(src / "one.png", src / "ünï côde.png")
    r = _predict(cli, onnx_model, src, "--out", tmp_path / "sortie ß", "--batch", "2")
    assert r.rc == 0, r.err
    assert listing(tmp_path / "sortie ß") == _outputs(["two", "ünï côde"])


def test_disk_full(cli, images: Path, onnx_model: Path, tmp_path: Path, tiny_disk: Path) -> None:
    for i in range(6):
        write_png(images / f"big{i}.png", 300, 300, seed=10 + i)
    (tiny_disk / "filler").write_bytes(b"\0" * 150_000)
    r = _predict(cli, onnx_model, images, "-o", tiny_disk / "o")
    assert r.rc == 1 and r.says("no space left"), r.out + r.err
    names = listing(tiny_disk / "o")
    assert not [n for n in names if n.startswith(".") and n != LOCK and "tmp" in n]  # no temporary file left
    assert LOCK not in names
    assert json.loads((tiny_disk / "o" / MANIFEST).read_text())["state"] in ("partial", "running")


@pytest.mark.slow
def test_kill_9_then_rerun_gives_identical_outputs(cli, images: Path, onnx_model: Path, tmp_path: Path) -> None:
    for i in range(16):
        write_png(images / f"more{i:02d}.png", 96, 96, seed=20 + i)
    tile = ["--mode", "tile", "--scale", "1", "--batch-size", "1"]  # one window an image, one call each
    ref = tmp_path / "ref"
    assert _predict(cli, onnx_model, images, "-o", ref, *tile).rc == 0
    out = tmp_path / "o"
    argv = ["predict", images, "-o", out, "--model", onnx_model, "--no-progress", "--threads", "1", *tile]

    def finished(d: Path) -> list[Path]:  # an image is complete once its nucleus table, written last, exists
        return sorted(f for csv in d.glob("*_nuclei.csv") for f in (d / csv.name.replace("_nuclei.csv", o)
                                                                     for o in OUTS))

    r, kept = kill_midway_then_rerun(argv, out, finished, min_done=2 * len(OUTS))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert f"skipped {len(kept) // len(OUTS)} already complete" in r.stdout, r.stdout  # the rerun resumed ...
    for f, (data, inode) in kept.items():  # ... keeping what the killed run had finished, untouched
        assert f.read_bytes() == data and f.stat().st_ino == inode, f.name
    assert listing(out) == listing(ref)  # no temporary file, no lock left
    per_image = [n for n in listing(ref) if n.endswith(OUTS)]
    assert all((out / n).read_bytes() == (ref / n).read_bytes() for n in per_image)
    assert json.loads((out / MANIFEST).read_text())["state"] == "complete"
