"""Fault corpus, `unetpp infer`: each case asserts the exit code, a message naming what was expected and what was
found, no traceback (the `cli` fixture), and the state of the output folder."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from faultkit import kill_midway_then_rerun, listing, subprocess_env, tiny_onnx, unetpp_cmd

from unetpp.core.runfolder import LOCK, MANIFEST

OUT_BYTES = 4 * 96 * 96


@pytest.fixture()
def inp(bins: Path, tmp_path: Path) -> Path:
    """A private copy of the three inputs."""
    return Path(shutil.copytree(bins, tmp_path / "in"))


def _many(bins: Path, folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    src = sorted(bins.glob("*.bin"))
    for i in range(n):
        shutil.copy(src[i % len(src)], folder / f"x{i:02d}.bin")
    return folder


def _manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


# -- refused before any work: exit 2, nothing written ---------------------------------------------------------
def _refusal_cases(tmp_path: Path, inp: Path, onnx_model: Path, half: Path) -> dict[str, tuple[list, tuple]]:
    text = tmp_path / "text.onnx"
    text.write_text("this is not a model\n")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(onnx_model.read_bytes()[:2000])
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    empty_dir = tmp_path / "nothing_here"
    empty_dir.mkdir()
    base = ["--input", inp]
    return {
        "out_is_input": ([*base, "-o", inp.parent, "--output-dirname", inp.name], ("the input folder itself",)),
        "out_inside_input": ([*base, "-o", inp, "--output-dirname", "r"], ("inside the input folder",)),
        "out_contains_input": ([*base, "-o", tmp_path.parent, "--output-dirname", tmp_path.name],
                               ("contains the input folder",)),
        "text_model": (["--model", text, *base, "-o", tmp_path / "o"], ("expected a valid ONNX file", "a text file")),
        "empty_model": (["--model", empty, *base, "-o", tmp_path / "o"], ("an empty file",)),
        "truncated_model": (["--model", trunc, *base, "-o", tmp_path / "o"], ("truncated or corrupt",)),
        "missing_model": (["--model", tmp_path / "nope.onnx", *base, "-o", tmp_path / "o"], ("nothing at",)),
        "half_size_output": (["--model", half, *base, "-o", tmp_path / "o"],
                             ("output shape", "expected (N, C, 96, 96)", "found (?, 3, 48, 48)")),
        "missing_input": (["--input", tmp_path / "no_such", "-o", tmp_path / "o"], ("--input", "nothing at")),
        "output_under_a_file": ([*base, "-o", blocker / "o"], ("a_file/o",)),
        "output_in_proc": ([*base, "-o", "/proc/unetpp_x"], ("/proc/unetpp_x",)),
        "empty_input_folder": (["--input", empty_dir, "-o", tmp_path / "o"], ("expected", "nothing_here")),
    }


REFUSALS = ["out_is_input", "out_inside_input", "out_contains_input", "text_model", "empty_model", "truncated_model",
            "missing_model", "half_size_output", "missing_input", "output_under_a_file", "output_in_proc",
            "empty_input_folder"]


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_before_any_work(case: str, cli, inp: Path, onnx_model: Path, half_size_onnx: Path,
                                 tmp_path: Path) -> None:
    argv, says = _refusal_cases(tmp_path, inp, onnx_model, half_size_onnx)[case]
    if "--model" not in argv:
        argv = ["--model", onnx_model, *argv]
    before = listing(tmp_path)
    r = cli("infer", *argv, "--no-progress")
    assert r.rc == 2, r.err
    assert "expected" in r.err and r.says(*says), r.err
    assert listing(tmp_path) == before  # nothing written anywhere


@pytest.mark.parametrize("op, in_shape, out_shape, out_type, attrs, says", [
    ("Identity", ["N", 1, 96, 96], ["N", 1, 96, 96], None, {}, ("(N, 3, S, S)", "found (N, 1, 96, 96)")),
    ("Identity", ["N", 3, 96, 64], ["N", 3, 96, 64], None, {}, ("square image", "found (N, 3, 96, 64)")),
    ("Cast", ["N", 3, 96, 96], ["N", 3, 96, 96], 7, {"to": 7}, ("output type", "found tensor(int64)")),
    ("Identity", ["N", 3, "H", "W"], ["N", 3, "H", "W"], None, {}, ("fixed C, H, W",)),
], ids=["one_channel_input", "non_square_input", "int64_output", "dynamic_spatial_input"])
def test_model_contract_refused_on_open(op: str, in_shape: list, out_shape: list, out_type: int | None, attrs: dict,
                                        says: tuple, cli, inp: Path, tmp_path: Path) -> None:
    model = tiny_onnx(tmp_path / "m.onnx", op, in_shape, out_shape, out_type, **attrs)
    r = cli("infer", "--model", model, "--input", inp, "-o", tmp_path / "o", "--no-progress")
    assert r.rc == 2 and "expected" in r.err and r.says(*says), r.err
    assert not (tmp_path / "o").exists()


# -- some items fail: exit 1, listed by name, the rest complete ------------------------------------------------
@pytest.mark.parametrize("bad_name, content, says", [
    ("short.bin", b"\0" * 1000, ("short.bin", "expected 110592 bytes", "found 1000 bytes")),
    ("text.bin", b"hello, not a tensor\n", ("text.bin", "expected 110592 bytes", "found 20 bytes")),
    ("zero.bin", b"", ("zero.bin", "found 0 bytes")),
    ("text.npy", b"not numpy\n", ("text.npy", "expected", ".npy")),
])
def test_bad_inputs_fail_alone(bad_name: str, content: bytes, says: tuple, cli, inp: Path, onnx_model: Path,
                               tmp_path: Path) -> None:
    (inp / bad_name).write_bytes(content)
    r = cli("infer", "--model", onnx_model, "--input", inp, "-o", tmp_path / "o", "--output-dirname", "r",
            "--no-progress")
    assert r.rc == 1 and r.says(*says), r.err
    out = tmp_path / "o" / "r"
    assert listing(out) == ["a_0.bin", "b_0.bin", "c_0.bin", MANIFEST]
    assert _manifest(out)["state"] == "partial" and _manifest(out)["counts"]["failed"] == 1


def test_wrong_shape_npy_fails_alone(cli, inp: Path, onnx_model: Path, tmp_path: Path) -> None:
    import numpy as np

    np.save(inp / "small.npy", np.zeros((3, 48, 48), np.float32))
    r = cli("infer", "--model", onnx_model, "--input", inp, "-o", tmp_path / "o", "--output-dirname", "r",
            "--no-progress")
    assert r.rc == 1 and r.says("small.npy", "expected shape (3, 96, 96)", "found shape (3, 48, 48)"), r.err
    assert "small_0.bin" not in listing(tmp_path / "o" / "r")


# -- the run folder: resume, refuse, overwrite, locks ----------------------------------------------------------
def _infer(cli, model: Path, inp: Path, out: Path, *extra: object):
    return cli("infer", "--model", model, "--input", inp, "-o", out.parent, "--output-dirname", out.name,
               "--no-progress", *extra)


def test_rerun_same_settings_resumes(cli, inp: Path, onnx_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "o" / "r"
    assert _infer(cli, onnx_model, inp, out).rc == 0
    first = {n: (out / n).read_bytes() for n in listing(out) if n != MANIFEST}
    r = _infer(cli, onnx_model, inp, out, "--threads", "1")  # threads do not change the results
    assert r.rc == 0 and "skipped (complete) 3" in r.out
    assert {n: (out / n).read_bytes() for n in first} == first
    m = _manifest(out)
    assert m["state"] == "complete" and "resumed" in m and m["counts"]["skipped"] == 3


def test_rerun_other_settings_is_refused_naming_them(cli, inp: Path, onnx_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "o" / "r"
    assert _infer(cli, onnx_model, inp, out).rc == 0
    before = listing(out)
    r = _infer(cli, onnx_model, inp, out, "--outfmt", "NPY", "--batch-size", "2")
    assert r.rc == 2 and r.says("different batch_size, outfmt", "--overwrite"), r.err
    assert listing(out) == before and _manifest(out)["settings"]["outfmt"] == "BIN"


def test_overwrite_replaces_only_what_unetpp_wrote(cli, inp: Path, onnx_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "o" / "r"
    assert _infer(cli, onnx_model, inp, out).rc == 0
    (out / "stray.txt").write_text("the user's, from before")
    r = _infer(cli, onnx_model, inp, out, "--outfmt", "NPY", "--overwrite")
    assert r.rc == 0 and r.says("--overwrite: replacing"), r.err
    assert listing(out) == ["a_0.npy", "b_0.npy", "c_0.npy", "stray.txt", MANIFEST]
    assert (out / "stray.txt").read_text() == "the user's, from before"
    assert sorted(p.name for p in out.parent.iterdir()) == ["r", "r_summary.json"]  # no hidden sibling left


def test_failed_overwrite_puts_the_old_folder_back(cli, inp: Path, onnx_model: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "o" / "r"
    assert _infer(cli, onnx_model, inp, out).rc == 0
    before = {n: (out / n).read_bytes() for n in listing(out)}

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("unetpp.infer.run.run_batches", boom)
    r = _infer(cli, onnx_model, inp, out, "--outfmt", "NPY", "--overwrite")
    assert r.rc == 130 and r.says("back as they were"), r.err
    assert {n: (out / n).read_bytes() for n in listing(out)} == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["r", "r_summary.json"]


def test_interrupted_overwrite_is_restored_on_the_next_run(cli, inp: Path, onnx_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "o" / "r"
    assert _infer(cli, onnx_model, inp, out).rc == 0
    aside = out.with_name(".r.unetpp-old")
    # what a kill -9 during an --overwrite run leaves: the old files aside with the old manifest, a new manifest
    # listing the new run's files, one of them written
    aside.mkdir()
    old = json.loads((out / MANIFEST).read_text())
    (aside / MANIFEST).write_text(json.dumps(old))
    for name in ("a_0.bin", "b_0.bin", "c_0.bin"):
        os.rename(out / name, aside / name)
    (out / "a_0.npy").write_bytes(b"partial")
    (out / MANIFEST).write_text(json.dumps({"settings": {"outfmt": "NPY"}, "state": "running", "run_id": "new",
                                            "replacing": old["run_id"], "command": "infer",
                                            "files": ["a_0.npy", "b_0.npy", "c_0.npy", "../r_summary.json"]}))
    r = _infer(cli, onnx_model, inp, out)
    assert r.rc == 0 and r.says("restoring the previous files") and "skipped (complete) 3" in r.out, r.err
    assert listing(out) == ["a_0.bin", "b_0.bin", "c_0.bin", MANIFEST] and not aside.exists()


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("holder, rc, says", [
    ("dead", 0, "stale lock"),
    ("alive", 2, "a run in progress"),
    ("other_host", 2, "on elsewhere.example"),
])
def test_locks(holder: str, rc: int, says: str, cli, inp: Path, onnx_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "o" / "r"
    out.mkdir(parents=True)
    pid = {"dead": _dead_pid(), "alive": os.getpid(), "other_host": 1}[holder]
    host = "elsewhere.example" if holder == "other_host" else socket.gethostname()
    (out / LOCK).write_text(json.dumps({"pid": pid, "host": host, "started": "2026-01-01T00:00:00"}))
    r = _infer(cli, onnx_model, inp, out)
    assert r.rc == rc and r.says(says), r.err
    if rc == 0:
        assert not (out / LOCK).exists() and _manifest(out)["state"] == "complete"
    else:
        assert listing(out) == [LOCK] and "expected no other unetpp run" in r.err


def test_old_spellings_and_unicode_paths(cli, inp: Path, onnx_model: Path, tmp_path: Path) -> None:
    src = Path(shutil.copytree(inp, tmp_path / "entrées à trier"))
    r = cli("infer", "--model", onnx_model, "--input", src, "--out", tmp_path / "résultats x", "--output-dirname",
            "é 1", "--batchsize", "2", "--warmup-count", "0", "--no-progress")
    assert r.rc == 0, r.err
    assert listing(tmp_path / "résultats x" / "é 1") == ["a_0.bin", "b_0.bin", "c_0.bin", MANIFEST]


# -- disk full, kill -9, concurrency ----------------------------------------------------------------------------
def test_disk_full(cli, bins: Path, onnx_model: Path, tmp_path: Path, tiny_disk: Path) -> None:
    src = _many(bins, tmp_path / "many", 8)  # 8 x 36,864 bytes > 200 KiB
    r = cli("infer", "--model", onnx_model, "--input", src, "-o", tiny_disk, "--output-dirname", "r",
            "--no-progress")
    assert r.rc == 1 and r.says("no space left"), r.err
    names = listing(tiny_disk / "r")
    assert all(n.endswith("_0.bin") for n in names if n != MANIFEST)  # no temporary file left
    assert all((tiny_disk / "r" / n).stat().st_size == OUT_BYTES for n in names if n != MANIFEST)
    assert _manifest(tiny_disk / "r")["state"] == "partial" and not (tiny_disk / "r" / LOCK).exists()


@pytest.mark.slow
def test_kill_9_then_rerun_gives_identical_outputs(cli, bins: Path, onnx_model: Path, tmp_path: Path) -> None:
    src = _many(bins, tmp_path / "many", 24)
    ref = tmp_path / "ref" / "r"
    assert _infer(cli, onnx_model, src, ref, "--threads", "1").rc == 0
    out = tmp_path / "o" / "r"
    argv = ["infer", "--model", onnx_model, "--input", src, "-o", out.parent, "--output-dirname", "r",
            "--no-progress", "--threads", "1"]
    r, kept = kill_midway_then_rerun(argv, out, lambda d: sorted(d.glob("*_0.bin")))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert f"skipped (complete) {len(kept)}" in r.stdout, r.stdout  # the rerun resumed ...
    for f, (data, inode) in kept.items():  # ... keeping what the killed run had finished, untouched
        assert f.read_bytes() == data and f.stat().st_ino == inode, f.name
    assert listing(out) == listing(ref)  # nothing left behind: no temporary file, no lock
    assert all((out / n).read_bytes() == (ref / n).read_bytes() for n in listing(ref) if n != MANIFEST)
    assert _manifest(out)["state"] == "complete"


@pytest.mark.slow
def test_second_concurrent_run_fails_at_once(cli, bins: Path, onnx_model: Path, tmp_path: Path) -> None:
    src = _many(bins, tmp_path / "many", 12)
    out = tmp_path / "o" / "r"
    argv = ["infer", "--model", onnx_model, "--input", src, "-o", out.parent, "--output-dirname", "r",
            "--no-progress", "--threads", "1", "--loop", "5"]
    p = subprocess.Popen(unetpp_cmd(*argv), env=subprocess_env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / LOCK).exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (out / LOCK).exists(), "the first run never took the lock"
        t0 = time.monotonic()
        r = cli(*argv[:-4])
        assert r.rc == 2 and r.says("a run in progress", f"pid {p.pid}"), r.err
        assert time.monotonic() - t0 < 10
    finally:
        p.kill()
        p.wait()
