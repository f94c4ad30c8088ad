"""A model cache that heals (model/cache_entries.py): every cached artefact is recorded with its SHA-256 when
written; one that is missing, changed, truncated or unreadable is built again with one line saying so, or, where
that fails, fp32 runs with one note; never a dead end. Concurrent first uses, a kill during a build and an
unwritable cache keep working. (The int8 first pass heals the same way: tests/compile/test_fast.py.)

The builds here are of a small random-weight checkpoint (tests/compile/conftest.py: seconds each), run with
`--precision int8` so that the int8 file is what runs although its check (rightly) fails."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from defaultkit import default_env, run_unetpp

from unetpp.compile import fast

needs_openvino = pytest.mark.skipif(not fast.openvino_available(),
                                    reason="openvino/nncf not installed: pip install 'unetpp[openvino]'")
# each test rebuilds and re-checks an int8 model (~5 minutes in all on 2 cores): `make test-published` runs them
pytestmark = pytest.mark.heavy


@pytest.fixture()
def image(tmp_path: Path) -> Path:
    img = tmp_path / "img.png"
    cv2.imwrite(str(img), cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (80, 90, 3), np.uint8), (5, 5), 0))
    return img


@pytest.fixture(scope="module")
def built_cache(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache holding the tiny model's int8 OpenVINO build, made once by a first use."""
    cache = tmp_path_factory.mktemp("built-cache")
    r = run_unetpp(["predict", str(fast.guard_set()[0][1]), "-o", str(cache.parent / "first-use"), "--model",
                    str(tiny_checkpoint), "--precision", "int8", "--no-progress"], default_env(cache))
    assert r.returncode == 0, r.stderr
    return cache


def _copy(cache: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the built cache and its int8 build folder."""
    mine = tmp_path / "cache"
    shutil.copytree(cache, mine)
    return mine, next((mine / "fast").glob("tiny-*"))


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


# Two ways into the rebuild, end to end: an artefact whose SHA-256 no longer matches its record, and a record whose
# signature no longer matches its text. Every other kind of damage (a changed .xml, a missing or unreadable file, a
# truncated record) takes one of these two ways; test_each_kind_of_damage_is_named holds each one's words.
DAMAGE = {
    "a truncated .bin": ("openvino-int8.bin", _truncate, "openvino-int8.bin changed since it was written"),
    "an edited record": ("openvino-int8.check.json",
                         lambda p: p.write_text(p.read_text().replace('"passed": false', '"passed": true')),
                         "openvino-int8.check.json changed since it was written"),
}


@needs_openvino
@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_cached_int8_build_is_built_again(case: str, built_cache: Path, tiny_checkpoint: Path,
                                                    image: Path, tmp_path: Path) -> None:
    name, spoil, why = DAMAGE[case]
    cache, folder = _copy(built_cache, tmp_path)
    spoil(folder / name)
    r = run_unetpp(["predict", str(image), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint),
                    "--precision", "int8", "--no-progress"], default_env(cache))
    assert r.returncode == 0, r.stderr
    lines = [s for s in r.stderr.splitlines() if "damaged" in s]
    assert len(lines) == 1 and why in lines[0] and "building it again" in lines[0], r.stderr
    assert "runtime: openvino int8" in r.stdout
    record = json.loads((folder / "openvino-int8.check.json").read_text())
    from unetpp.model.cache_entries import damage

    assert damage(folder, record["files"]) is None  # rebuilt whole, recorded again
    r = run_unetpp(["predict", str(image), "-o", str(tmp_path / "again"), "--model", str(tiny_checkpoint),
                    "--precision", "int8", "--no-progress"], default_env(cache))
    assert r.returncode == 0 and "damaged" not in r.stderr and "building" not in r.stderr, r.stderr


@needs_openvino
def test_an_entry_that_cannot_be_rebuilt_runs_fp32_with_one_note(built_cache: Path, tiny_checkpoint: Path,
                                                                 image: Path, tmp_path: Path) -> None:
    """An unreadable .bin (a folder in its place) that the rebuild cannot replace either: fp32 runs, one note."""
    cache, folder = _copy(built_cache, tmp_path)
    (folder / "openvino-int8.bin").unlink()
    (folder / "openvino-int8.bin").mkdir()
    (folder / "openvino-int8.bin" / "x").write_text("in the way")
    r = run_unetpp(["predict", str(image), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint),
                    "--no-progress"], default_env(cache))
    assert r.returncode == 0, r.stderr
    notes = [s for s in r.stderr.splitlines() if "could not be built" in s]
    assert len(notes) == 1 and "running fp32" in notes[0], r.stderr
    assert "runtime: onnxruntime fp32" in r.stdout


def test_a_damaged_fp32_export_is_exported_again(tiny_checkpoint: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from unetpp.atomic import file_sha256
    from unetpp.model.resolve import onnx_for_checkpoint

    monkeypatch.setenv("UNETPP_CACHE", str(tmp_path / "cache"))
    onnx = onnx_for_checkpoint(tiny_checkpoint)
    good = file_sha256(onnx)
    _truncate(onnx)
    capsys.readouterr()
    assert onnx_for_checkpoint(tiny_checkpoint) == onnx and file_sha256(onnx) == good
    err = capsys.readouterr().err
    assert err.count("is damaged") == 1 and "exporting it again" in err


def test_a_damaged_shipped_build_is_not_used(tmp_path: Path) -> None:
    from unetpp.model.shipped_builds import BUILDS, find_shipped, read_manifest

    copy = tmp_path / "builds"
    shutil.copytree(BUILDS, copy)
    entry = next(e for e in read_manifest(copy)["builds"] if e["kind"] == "int8")
    sha, backend = entry["checkpoint_sha256"], entry["backend"]
    found, why = find_shipped("int8", sha, backend, lambda e: True, folder=copy)
    assert found is not None and why is None and found[0] == copy / entry["artefact"]
    assert find_shipped("int8", "0" * 64, backend, lambda e: True, folder=copy) == (None, None)  # another model
    _truncate(copy / entry["artefact"].replace(".xml", ".bin"))
    found, why = find_shipped("int8", sha, backend, lambda e: True, folder=copy)
    assert found is None and "damaged" in why and "changed since it was written" in why


@needs_openvino
def test_concurrent_first_uses_build_once_and_agree(tiny_checkpoint: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code = (f"from unetpp.compile.fast import choose_runtime; c = choose_runtime({str(tiny_checkpoint)!r}, "
            "precision='int8'); print(c.model)")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=default_env(cache), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    models = [out.strip().splitlines()[-1] for out, _ in outs]  # (NNCF writes its progress to stdout)
    assert models[0] == models[1] and Path(models[0]).is_file()
    assert sum(e.count("building the fast runtime") for _, e in outs) == 1, [e for _, e in outs]


@needs_openvino
def test_a_build_killed_midway_is_built_again_on_next_use(tiny_checkpoint: Path, tmp_path: Path,
                                                          image: Path) -> None:
    cache = tmp_path / "cache"
    env = default_env(cache)
    p = subprocess.Popen([sys.executable, "-m", "unetpp", "predict", str(image), "-o", str(tmp_path / "killed"),
                          "--model", str(tiny_checkpoint), "--precision", "int8", "--no-progress"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and not list((cache / "fast").glob("tiny-*/.openvino-int8.compile-*")):
        if p.poll() is not None:
            pytest.fail(f"the build ended (exit {p.returncode}) before the kill could land")
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    folder = next((cache / "fast").glob("tiny-*"))
    assert not (folder / "openvino-int8.check.json").exists()  # killed before its record: not a usable entry
    r = run_unetpp(["predict", str(image), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint),
                    "--precision", "int8", "--no-progress"], env)
    assert r.returncode == 0 and "building the fast runtime" in r.stderr, r.stderr
    assert "runtime: openvino int8" in r.stdout
    assert not list(folder.glob(".openvino-int8.compile-*"))  # the killed build's work folder is cleared


@needs_openvino
def test_an_unwritable_cache_builds_in_a_temporary_one(tiny_checkpoint: Path, tmp_path: Path, image: Path) -> None:
    """UNETPP_CACHE under a file (nothing can be made there, even as root): one note, a temporary cache, a run."""
    (tmp_path / "file").write_text("not a folder")
    env = default_env(tmp_path / "file" / "cache", TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    r = run_unetpp(["predict", str(image), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint),
                    "--precision", "int8", "--no-progress"], env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("cannot be written; using") == 1 and "runtime: openvino int8" in r.stdout
    assert list((tmp_path / "tmp").glob("unetpp-cache-*/fast/tiny-*/openvino-int8.xml"))


def test_each_kind_of_damage_is_named(tmp_path: Path) -> None:
    """model/cache_entries.py on hand-made files: intact, missing, truncated, changed, unreadable; records signed,
    edited, truncated, absent, of an older unetpp (unsigned: not used, built again without a word)."""
    from unetpp.model.cache_entries import damage, file_hashes, read_signed_json, write_signed_json

    (tmp_path / "m.xml").write_text("<net/>")
    (tmp_path / "m.bin").write_bytes(b"\x01" * 64)
    hashes = file_hashes([tmp_path / "m.xml", tmp_path / "m.bin"])
    assert damage(tmp_path, hashes) is None
    assert damage(tmp_path, None) and "without the SHA-256" in damage(tmp_path, {})
    _truncate(tmp_path / "m.bin")
    assert damage(tmp_path, hashes).startswith("m.bin changed since it was written")
    (tmp_path / "m.bin").unlink()
    assert damage(tmp_path, hashes) == "m.bin is missing"
    (tmp_path / "m.bin").mkdir()
    assert damage(tmp_path, hashes).startswith("m.bin cannot be read")
    rec = tmp_path / "r.json"
    assert read_signed_json(rec) == (None, None)
    written = write_signed_json(rec, {"a": 1, "files": hashes})
    assert read_signed_json(rec) == (written, None)
    rec.write_text(rec.read_text().replace('"a": 1', '"a": 2'))
    assert read_signed_json(rec) == (None, "r.json changed since it was written")
    write_signed_json(rec, {"a": 1})
    _truncate(rec)
    assert read_signed_json(rec) == (None, "r.json is not valid JSON (truncated or overwritten)")
    rec.write_text(json.dumps({"a": 1}))  # an older unetpp's record: no digest
    assert read_signed_json(rec) == (None, None)
