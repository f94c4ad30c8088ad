"""Fault corpus, inputs as labs have them and clean refusals: microscope export folders, typos, a file given twice,
multi-page TIFFs, non-finite values; unsupported opsets, a port in use, unknown model names, an unwritable cache,
the Python API's misuse. Exit code, message, no traceback, nothing half-made."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from faultkit import listing, write_png

from unetpp.core.runfolder import MANIFEST
from unetpp.errors import InputError

OUTS = ("_labels.png", "_mask.png", "_nuclei.csv")


def _predict(cli, model: Path, *argv: object):
    return cli("predict", *argv, "--model", model, "--no-progress", "--threads", "1")


def _outputs(stems: list[str]) -> list[str]:
    return sorted([f"{s}{o}" for s in stems for o in OUTS] + ["counts.csv", "predict_summary.json", MANIFEST])


# -- a microscope's export folder: images with metadata files next to them ---------------------------------------
def test_a_microscope_export_folder_completes_with_one_note(cli, images: Path, onnx_model: Path,
                                                           tmp_path: Path) -> None:
    for name, text in (("one_metadata.xml", "<OME/>"), ("Thumbs.db", "\x00\x01"), (".DS_Store", "\x00"),
                       ("acquisition.txt", "40x"), ("positions.csv", "x,y\n"), ("settings.json", "{}")):
        (images / name).write_text(text)
    r = _predict(cli, onnx_model, images, "-o", tmp_path / "o")
    assert r.rc == 0, r.out + r.err
    notes = [line for line in r.err.splitlines() if "not images" in line]
    assert len(notes) == 1 and all(s in notes[0] for s in (".xml", ".db", ".txt", ".csv", ".json")), r.err
    assert listing(tmp_path / "o") == _outputs(["one", "two"])
    summary = json.loads((tmp_path / "o" / "predict_summary.json").read_text())
    assert summary["status"] == "complete" and summary["n_failed"] == 0 and len(summary["skipped_not_images"]) == 5
    assert json.loads((tmp_path / "o" / MANIFEST).read_text())["state"] == "complete"


def test_only_non_images_is_refused(cli, onnx_model: Path, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "plate_metadata.xml").write_text("<x/>")
    r = _predict(cli, onnx_model, tmp_path / "in", "-o", tmp_path / "o")
    assert r.rc == 2 and r.says("at least one image file", "not images"), r.err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("typo", ["missing_file", "missing_folder", "broken_link"])
def test_a_mistyped_input_is_refused_before_anything_is_made(typo: str, cli, images: Path, onnx_model: Path,
                                                            tmp_path: Path) -> None:
    bad = {"missing_file": images / "on.png", "missing_folder": tmp_path / "imgs_typo",
           "broken_link": tmp_path / "link.png"}[typo]
    if typo == "broken_link":
        bad.symlink_to(tmp_path / "gone.png")
    before = listing(tmp_path)
    r = _predict(cli, onnx_model, images, bad, "-o", tmp_path / "runs" / "o")
    assert r.rc == 2 and r.says(str(bad), "expected an existing image file or folder"), r.err
    assert listing(tmp_path) == before and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("twice", ["same_path", "file_and_its_folder", "via_symlink"])
def test_a_file_given_twice_is_done_once(twice: str, cli, images: Path, onnx_model: Path, tmp_path: Path) -> None:
    one = images / "one.png"
    if twice == "same_path":
        argv: list[object] = [one, one]
    elif twice == "file_and_its_folder":
        argv = [images, one]
    else:
        (tmp_path / "alias.png").symlink_to(one)
        argv = [one, tmp_path / "alias.png"]
    r = _predict(cli, onnx_model, *argv, "-o", tmp_path / "o")
    assert r.rc == 0 and r.says("given more than once are done once"), r.err
    summary = json.loads((tmp_path / "o" / "predict_summary.json").read_text())
    assert summary["n_failed"] == 0 and [i["stem"] for i in summary["images"]].count("one") == 1


# -- multi-page TIFFs: page by page, never the first page alone ----------------------------------------------
def _stack(path: Path, pages: list[np.ndarray]) -> Path:
    assert cv2.imwritemulti(str(path), pages)
    return path


def _page(seed: int, blank: bool = False) -> np.ndarray:
    img = np.full((48, 64), 1000, np.uint16)
    if not blank:
        rng = np.random.default_rng(seed)
        for _ in range(3):
            cv2.circle(img, (int(rng.integers(10, 54)), int(rng.integers(10, 38))), 6, 40000, -1)
    return img


def test_a_stack_is_segmented_page_by_page(cli, onnx_model: Path, tmp_path: Path) -> None:
    """A z-stack whose first page is blank: each page gets its own outputs, equal to those of that page saved
    alone; the blank first page is not the answer for the stack."""
    src = tmp_path / "in"
    src.mkdir()
    pages = [_page(0, blank=True), _page(1), _page(2)]
    _stack(src / "zstack.tif", pages)
    for k, page in enumerate(pages, 1):
        assert cv2.imwrite(str(tmp_path / f"alone_p{k}.tif"), page)
    r = _predict(cli, onnx_model, src, "-o", tmp_path / "o")
    assert r.rc == 0, r.err
    assert listing(tmp_path / "o") == _outputs(["zstack_p1", "zstack_p2", "zstack_p3"])
    assert _predict(cli, onnx_model, *[tmp_path / f"alone_p{k}.tif" for k in (1, 2, 3)], "-o", tmp_path / "a").rc == 0
    for k in (1, 2, 3):
        for suffix in OUTS:
            assert (tmp_path / "o" / f"zstack_p{k}{suffix}").read_bytes() == \
                (tmp_path / "a" / f"alone_p{k}{suffix}").read_bytes(), (k, suffix)
    summary = json.loads((tmp_path / "o" / "predict_summary.json").read_text())
    assert [(i["stem"], i["page"]) for i in summary["images"]] == [("zstack_p1", 1), ("zstack_p2", 2),
                                                                    ("zstack_p3", 3)]


def test_page_names_are_zero_padded_to_the_page_count(tmp_path: Path) -> None:
    from unetpp.predict.sources import gather_sources

    _stack(tmp_path / "t.tiff", [_page(k) for k in range(12)])
    got = gather_sources([tmp_path / "t.tiff"]).sources
    assert [s.stem for s in got][:2] == ["t_p01", "t_p02"] and got[-1].stem == "t_p12" and got[-1].page == 12


def test_a_stack_read_without_a_page_is_refused(tmp_path: Path) -> None:
    from unetpp.predict.imageio import read_image

    _stack(tmp_path / "s.tif", [_page(0), _page(1)])
    with pytest.raises(InputError, match="a TIFF of 2 pages"):
        read_image(tmp_path / "s.tif")
    assert read_image(tmp_path / "s.tif", page=2)[1].height == 48


# -- clean refusals ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", ["7", "8", "99"])
def test_an_unsupported_opset_is_one_line_and_makes_nothing(opset: str, cli, random_checkpoint: Path,
                                                           tmp_path: Path) -> None:
    r = cli("export", random_checkpoint, "-o", tmp_path / "new" / "m.onnx", "--opset", opset)
    assert r.rc == 2 and r.says("--opset", "expected an ONNX opset from 9", f"found {opset}"), r.err
    assert len(r.err.strip().splitlines()) == 1 and not r.out
    assert listing(tmp_path) == [] and not (tmp_path / "new").exists()


def test_serve_on_a_port_in_use_is_refused_at_once(cli) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        r = cli("serve", "--port", port)
    assert r.rc == 2 and r.says(f"--port {port}", "expected a free port", "in use"), r.err
    assert len(r.err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["predict", "export", "compile", "serve", "infer"])
def test_an_unknown_model_name_lists_the_shipped_ones(command: str, cli, images: Path, bins: Path,
                                                      tmp_path: Path) -> None:
    argv = {"predict": ["predict", images, "-o", tmp_path / "o", "--model", "instnace"],
            "export": ["export", "instnace", "-o", tmp_path / "m.onnx"],
            "compile": ["compile", "instnace", "--backend", "onnxruntime", "-o", tmp_path / "m.onnx"],
            "serve": ["serve", "--port", "0", "--model", "instnace"],
            "infer": ["infer", "--model", "instnace", "--input", bins, "-o", tmp_path / "o"]}[command]
    before = listing(tmp_path)
    r = cli(*argv)
    assert r.rc == 2 and r.says("a shipped model (guide, instance)", "'instnace'"), r.err
    assert listing(tmp_path) == before


def test_an_unwritable_cache_falls_back_to_a_temporary_one(cli, images: Path, random_checkpoint: Path,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only home: the checkpoint's ONNX export goes to a temporary cache, with one note naming
    UNETPP_CACHE."""
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o500)
    if os.access(home, os.W_OK):  # root: permissions do not bind; a path under a file cannot be made either way
        (tmp_path / "file").write_text("x")
        monkeypatch.setenv("UNETPP_CACHE", str(tmp_path / "file" / "cache"))
    else:
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.delenv("UNETPP_CACHE", raising=False)
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    from unetpp.model import sources

    monkeypatch.setattr(sources, "_NOTED", set())
    r = cli("predict", images / "one.png", "-o", tmp_path / "o", "--model", random_checkpoint, "--mode", "resize",
            "--no-progress")
    home.chmod(0o700)
    assert r.rc == 0, r.err
    assert r.err.count("cannot be written; using") == 1 and r.says("UNETPP_CACHE"), r.err
    assert list((tmp_path / "tmp").glob("unetpp-cache-*/onnx/**/*.onnx"))


def test_the_api_says_what_it_expected(images: Path, onnx_model: Path, tmp_path: Path) -> None:
    import unetpp

    with unetpp.load(onnx_model, threads=1) as model:
        with pytest.raises(InputError, match=r"image: expected an image array .* found the path"):
            model.predict(str(images / "one.png"))
        with pytest.raises(InputError, match="found the path"):
            model.predict_many([np.zeros((32, 32), np.uint8), images / "two.png"])
        with pytest.raises(InputError, match="expected an existing image file or folder"):
            model.predict_folder(tmp_path / "no_such_folder", tmp_path / "o")
        img = np.zeros((40, 40), np.float32)
        img[3, 3] = np.nan
        with pytest.raises(InputError, match="finite numbers"):
            model.predict(img)
    assert not (tmp_path / "o").exists()
    with pytest.raises(InputError, match=r"a shipped model \(guide, instance\)"):
        unetpp.load("instnace")
    write_png(tmp_path / "ok.png")
