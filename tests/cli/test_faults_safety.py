"""Fault corpus, adversarial: no command deletes or overwrites a file that unetpp did not write.

Every command that writes (infer, predict, preprocess, prepare, export, compile, bench, train, train-instance, run,
serve --save, export --format bioimageio, evaluate) is pointed at a user's folder or file, given its own inputs as
outputs (by path, symlink or hard link), or asked to --overwrite a run folder the user has added files to. The
user's files must come out byte-identical, with the same inode and modification time."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from faultkit import write_png

from unetpp.core.runfolder import MANIFEST


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under a folder: bytes, inode and mtime of files and links, and the folders themselves."""
    out: dict[str, tuple] = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_file():
            out[rel] = (p.read_bytes(), st.st_ino, st.st_mtime_ns)
        else:
            out[rel] = ("dir",)
    return out


@pytest.fixture()
def thesis(tmp_path: Path) -> Path:
    """A user's folder: notes, a raw image, a table in a sub-folder, a model file of their own."""
    folder = tmp_path / "thesis"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("chapter 3: do not lose this\n")
    write_png(folder / "raw.png", 60, 70, seed=5)
    (folder / "sub" / "data.csv").write_text("a,b\n1,2\n")
    (folder / "their.onnx").write_bytes(b"their own model, not unetpp's")
    (folder / "their.zip").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip of theirs
    return folder


def _predict(cli, model: Path, *argv: object):
    return cli("predict", *argv, "--model", model, "--no-progress", "--threads", "1")


# -- a command pointed at a user's folder: refused, exit 2, the folder untouched -----------------------------
@pytest.mark.parametrize("command", ["predict", "predict_input_inside", "infer", "bench", "prepare", "preprocess",
                                     "train", "train_instance", "run", "serve_save", "evaluate_instances"])
def test_a_users_folder_is_never_taken_as_an_output_folder(command: str, cli, thesis: Path, images: Path,
                                                           bins: Path, onnx_model: Path, synthetic_root: Path,
                                                           tmp_path: Path) -> None:
    argv: list[object]
    if command == "predict":
        argv = ["predict", images, "-o", thesis, "--model", onnx_model, "--no-progress"]
    elif command == "predict_input_inside":  # the case: an image, -o the folder that holds it
        argv = ["predict", thesis / "raw.png", "-o", thesis, "--model", onnx_model, "--no-progress"]
    elif command == "infer":
        argv = ["infer", "--model", onnx_model, "--input", bins, "-o", thesis.parent, "--output-dirname",
                thesis.name, "--no-progress"]
    elif command == "bench":
        argv = ["bench", "--inputs", bins, "--model", onnx_model, "-o", thesis, "--min-seconds", "0"]
    elif command == "prepare":
        argv = ["prepare", synthetic_root, thesis, "--no-progress"]
    elif command == "preprocess":
        write_png(tmp_path / "d96" / "x.png", 96, 96)
        argv = ["preprocess", tmp_path / "d96", thesis, "--no-progress"]
    elif command == "train":
        argv = ["train", "--data", synthetic_root, "-o", thesis, "--epochs", "1", "--no-progress"]
    elif command == "train_instance":
        argv = ["train-instance", "--data", synthetic_root, "-o", thesis, "--epochs", "1", "--no-progress"]
    elif command == "run":
        argv = ["run", "--data", synthetic_root, "-o", thesis]
    elif command == "serve_save":
        argv = ["serve", "--port", "0", "--save", thesis]
    else:
        (tmp_path / "pred").mkdir()
        argv = ["evaluate", "--instances", tmp_path / "pred", "--gt", synthetic_root, "-o", thesis]
    before = snapshot(thesis)
    r = cli(*argv)
    assert r.rc == 2 and "expected" in r.err, r.err
    assert r.says("unetpp did not write") or r.says("inside it"), r.err
    assert snapshot(thesis) == before


def test_an_image_inside_its_own_run_folder_is_refused(cli, images: Path, onnx_model: Path, tmp_path: Path) -> None:
    """The run folder is unetpp's, but an input inside it would be listed and replaced by a later --overwrite."""
    out = tmp_path / "o"
    assert _predict(cli, onnx_model, images, "-o", out).rc == 0
    shutil.copy(images / "one.png", out / "cells_A1.png")
    before = snapshot(out)
    r = _predict(cli, onnx_model, out / "cells_A1.png", "-o", out, "--threshold", "0.7", "--overwrite")
    assert r.rc == 2 and r.says("cells_A1.png inside it"), r.err
    assert snapshot(out) == before


@pytest.mark.parametrize("how", ["symlink_file", "symlink_folder", "dotdot_path"])
def test_an_input_reaching_into_the_output_folder_by_another_path_is_refused(how: str, cli, images: Path,
                                                                              onnx_model: Path,
                                                                              tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert _predict(cli, onnx_model, images, "-o", out).rc == 0
    shutil.copy(images / "one.png", out / "inside.png")
    if how == "symlink_file":  # a link elsewhere that points at a file inside the run folder
        (tmp_path / "link.png").symlink_to(out / "inside.png")
        src: Path = tmp_path / "link.png"
    elif how == "symlink_folder":  # the run folder reached through a linked folder
        (tmp_path / "alias").symlink_to(out)
        src = tmp_path / "alias" / "inside.png"
    else:
        src = tmp_path / "elsewhere" / ".." / "o" / "inside.png"
        (tmp_path / "elsewhere").mkdir()
    before = snapshot(out)
    r = _predict(cli, onnx_model, src, "-o", out)
    assert r.rc == 2 and r.says("inside it"), r.err
    assert snapshot(out) == before


def test_an_output_folder_linked_to_the_input_folder_is_refused(cli, images: Path, onnx_model: Path,
                                                               tmp_path: Path) -> None:
    (tmp_path / "alias").symlink_to(images, target_is_directory=True)
    before = snapshot(images)
    r = _predict(cli, onnx_model, images, "-o", tmp_path / "alias")
    assert r.rc == 2 and r.says("the input folder itself"), r.err
    assert snapshot(images) == before


# -- --overwrite of a run folder the user has added to: only what unetpp wrote goes --------------------------------
@pytest.mark.parametrize("command", ["predict", "infer", "prepare", "preprocess"])
def test_overwrite_keeps_the_users_files_in_a_run_folder(command: str, cli, images: Path, bins: Path,
                                                         onnx_model: Path, synthetic_root: Path,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "o"
    if command == "predict":
        first = ["predict", images, "-o", out, "--model", onnx_model, "--no-progress"]
        second = [*first, "--threshold", "0.7", "--overwrite"]
    elif command == "infer":
        first = ["infer", "--model", onnx_model, "--input", bins, "-o", tmp_path, "--output-dirname", "o",
                 "--no-progress"]
        second = [*first, "--outfmt", "NPY", "--overwrite"]
    elif command == "prepare":
        first = ["prepare", synthetic_root, out, "--no-progress"]
        second = [*first, "--size", "64", "--overwrite"]
    else:
        for i in range(2):
            write_png(tmp_path / "d96" / f"s{i}.png", 96, 96, seed=i)
        first = ["preprocess", tmp_path / "d96", out, "--no-progress"]
        second = [*first, "--fmt", "npy", "--overwrite"]
    assert cli(*first).rc == 0
    (out / "my_notes.txt").write_text("added by the user after the run")
    (out / "mine").mkdir()
    (out / "mine" / "keep.csv").write_text("1,2\n")
    users = {k: v for k, v in snapshot(out).items() if k.startswith(("my_notes", "mine"))}
    wrote = set(json.loads((out / MANIFEST).read_text())["files"])
    r = cli(*second)
    assert r.rc == 0 and r.says("replacing"), r.err
    after = snapshot(out)
    assert {k: after[k] for k in users} == users  # byte-identical, same inode and mtime
    assert not any(os.path.lexists(out / f) for f in wrote - set(json.loads((out / MANIFEST).read_text())["files"]))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and "unetpp-old" in p.name]


def test_a_users_file_under_a_name_predict_writes_is_refused(cli, images: Path, onnx_model: Path,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert _predict(cli, onnx_model, images / "one.png", "-o", out).rc == 0
    (out / "two_mask.png").write_bytes(b"the user's own hand-drawn mask")
    before = snapshot(out)
    r = _predict(cli, onnx_model, images, "-o", out)  # two.png would write two_mask.png
    assert r.rc == 2 and r.says("unetpp did not write", "two_mask.png"), r.err
    assert snapshot(out) == before


def test_a_folder_of_another_command_is_refused(cli, images: Path, bins: Path, onnx_model: Path,
                                               tmp_path: Path) -> None:
    assert cli("infer", "--model", onnx_model, "--input", bins, "-o", tmp_path, "--output-dirname", "r",
               "--no-progress").rc == 0
    before = snapshot(tmp_path / "r")
    r = _predict(cli, onnx_model, images, "-o", tmp_path / "r")
    assert r.rc == 2 and r.says("a run folder of `unetpp infer`"), r.err
    assert snapshot(tmp_path / "r") == before


def test_infer_never_replaces_a_users_file_named_like_its_summary(cli, bins: Path, onnx_model: Path,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "val_summary.json").write_text("my own notes, named unluckily")
    before = snapshot(tmp_path)
    r = cli("infer", "--model", onnx_model, "--input", bins, "-o", tmp_path, "--output-dirname", "val",
            "--no-progress")
    assert r.rc == 2 and r.says("val_summary.json"), r.err
    assert snapshot(tmp_path) == before


# -- single output files: a user's file is never replaced, an input never an output ----------------------------
@pytest.mark.parametrize("case", ["export_onto_theirs", "zoo_onto_theirs", "compile_onto_theirs",
                                  "compile_ir_onto_their_bin", "export_parity_onto_theirs",
                                  "evaluate_csv_onto_theirs"])
def test_a_users_file_is_never_replaced_by_a_single_output(case: str, cli, thesis: Path, random_checkpoint: Path,
                                                          onnx_model: Path, bins: Path, tmp_path: Path) -> None:
    if case == "export_onto_theirs":
        argv: list[object] = ["export", random_checkpoint, "-o", thesis / "their.onnx"]
    elif case == "zoo_onto_theirs":
        argv = ["export", "--format", "bioimageio", random_checkpoint, "-o", thesis / "their.zip"]
    elif case == "compile_onto_theirs":
        argv = ["compile", onnx_model, "--backend", "onnxruntime", "-o", thesis / "their.onnx"]
    elif case == "compile_ir_onto_their_bin":
        (thesis / "model.bin").write_bytes(b"their weights")
        argv = ["compile", onnx_model, "--backend", "openvino", "-o", thesis / "model.xml"]
    elif case == "export_parity_onto_theirs":
        (thesis / "new.onnx.parity.json").write_text('{"mine": true}')
        argv = ["export", random_checkpoint, "-o", thesis / "new.onnx"]
    else:
        (thesis / "scores.csv").write_text("my,own,table\n")
        masks = tmp_path / "masks"
        for f in bins.glob("*.bin"):
            write_png(masks / f"{f.stem}.png", 96, 96)
        assert cli("infer", "--model", onnx_model, "--input", bins, "-o", tmp_path, "--output-dirname", "r",
                   "--no-progress").rc == 0
        argv = ["evaluate", tmp_path / "r", masks, "--csv", thesis / "scores.csv"]
    before = snapshot(thesis)
    r = cli(*argv)
    assert r.rc == 2 and r.says("an existing file unetpp did not write"), r.err
    assert snapshot(thesis) == before


@pytest.mark.parametrize("how", ["symlink", "hardlink"])
@pytest.mark.parametrize("command", ["export", "compile"])
def test_an_output_that_is_the_input_by_a_link_is_refused(command: str, how: str, cli, random_checkpoint: Path,
                                                         onnx_model: Path, tmp_path: Path) -> None:
    src = tmp_path / ("c.pt" if command == "export" else "m.onnx")
    shutil.copy(random_checkpoint if command == "export" else onnx_model, src)
    out = tmp_path / ("alias.onnx" if command == "compile" else "alias.pt.onnx")
    if command == "export":
        out = tmp_path / "alias.onnx"
    if how == "symlink":
        out.symlink_to(src)
    else:
        os.link(src, out)
    before = snapshot(tmp_path)
    argv = ["export", src, "-o", out] if command == "export" else ["compile", src, "--backend", "onnxruntime",
                                                                     "-o", out]
    r = cli(*argv)
    assert r.rc == 2 and r.says("a file other than the input"), r.err
    assert snapshot(tmp_path) == before


def test_rerunning_compile_replaces_its_own_file(cli, onnx_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    assert cli("compile", onnx_model, "--backend", "onnxruntime", "-o", out).rc == 0
    first = out.stat().st_ino
    assert cli("compile", onnx_model, "--backend", "onnxruntime", "-o", out).rc == 0  # its report records it: ours
    assert out.stat().st_ino != first


def test_serve_save_never_replaces_a_file(tmp_path: Path) -> None:
    """--save names each image's files after the time, the process and a counter, and skips any name taken."""
    import time

    import numpy as np

    from unetpp.predict.image import PredictOptions, output_paths
    from unetpp.predict.table import NucleusTable
    from unetpp.serve.service import ServeSettings, Service

    svc = Service(ServeSettings(save_dir=str(tmp_path)))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    taken = output_paths(tmp_path, f"{stamp}-{os.getpid()}-000001-a", PredictOptions(overlay=True))
    taken["mask"].write_bytes(b"someone else's")
    labels = np.zeros((8, 8), np.int32)
    labels[2:5, 2:5] = 1
    result = {"labels": labels, "mask": labels > 0, "table": NucleusTable.from_labels(labels), "prob": labels * 1.0}
    svc.save("a", np.zeros((8, 8, 3), np.uint8), PredictOptions(), {"result": result})
    assert taken["mask"].read_bytes() == b"someone else's"
    assert len([p for p in tmp_path.iterdir() if p.name.endswith("-a_labels.png")]) == 1
