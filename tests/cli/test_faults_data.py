"""Fault corpus, data commands (`prepare`, `preprocess`, `run`'s data resolution): exit code, expected/found
message, no traceback, the state of the output folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from faultkit import listing, write_png

from unetpp.core.runfolder import MANIFEST


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from unetpp.data.synthetic import make_synthetic_dsb

    return make_synthetic_dsb(tmp_path_factory.mktemp("synth") / "dsb", n=4, n_val=1)


@pytest.fixture()
def root(synth_root: Path, tmp_path: Path) -> Path:
    """A private copy of a 4-sample DSB2018-like root."""
    return Path(shutil.copytree(synth_root, tmp_path / "dsb"))


def _ids(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "stage1_train").iterdir())


@pytest.fixture()
def prepared(root: Path, tmp_path: Path, cli) -> Path:
    assert cli("prepare", root, tmp_path / "d96", "--no-progress").rc == 0
    return tmp_path / "d96"


# -- prepare ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["src_missing", "dst_is_src", "dst_inside_src", "dst_contains_src", "ghost_id",
                                  "dst_under_file", "size_zero"])
def test_prepare_refused(case: str, cli, root: Path, tmp_path: Path) -> None:
    dst = tmp_path / "d96"
    src: object = root
    extra: list[object] = []
    if case == "src_missing":
        src, says = tmp_path / "nope", ("nothing at",)
    elif case == "dst_is_src":
        dst, says = root / "stage1_train", ("the input folder itself",)
    elif case == "dst_inside_src":
        dst, says = root / "stage1_train" / "out", ("inside the input folder",)
    elif case == "dst_contains_src":
        dst, says = tmp_path, ("contains the input folder",)
    elif case == "ghost_id":
        (tmp_path / "ids.txt").write_text(f"{_ids(root)[0]}\nghost\n")
        extra, says = ["--ids", tmp_path / "ids.txt"], ("none for ghost",)
    elif case == "dst_under_file":
        (tmp_path / "f").write_text("x")
        dst, says = tmp_path / "f" / "d96", ("a file, where a folder is needed",)
    else:
        extra, says = ["--size", "0"], ("expected an integer >= 1",)
    before = listing(tmp_path)
    r = cli("prepare", src, dst, *extra, "--no-progress")
    assert r.rc == 2 and "expected" in r.err and r.says(*says), r.err
    assert listing(tmp_path) == before


@pytest.mark.parametrize("damage, says", [
    ("corrupt_image", "expected a readable image"),
    ("no_masks", "expected a masks folder"),
    ("text_mask", "expected a readable image"),
])
def test_prepare_bad_sample_fails_alone(damage: str, says: str, cli, root: Path, tmp_path: Path) -> None:
    bad = _ids(root)[1]
    sample = root / "stage1_train" / bad
    if damage == "corrupt_image":
        (sample / "images" / f"{bad}.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    elif damage == "no_masks":
        shutil.rmtree(sample / "masks")
    else:
        next((sample / "masks").iterdir()).write_text("not a mask")
    r = cli("prepare", root, tmp_path / "d96", "--no-progress")
    assert r.rc == 1 and r.says(bad, says), r.err
    good = [i for i in _ids(root) if i != bad]
    assert listing(tmp_path / "d96") == sorted([f"images/{i}.png" for i in good] + [f"masks/0/{i}.png" for i in good]
                                               + [MANIFEST])


def test_prepare_unicode_paths(cli, root: Path, tmp_path: Path) -> None:
    src = Path(shutil.move(root, tmp_path / "données brutes"))
    r = cli("prepare", src, tmp_path / "préparé 96", "--no-progress")
    assert r.rc == 0 and len(listing(tmp_path / "préparé 96")) == 8 + 1, r.err  # + the run folder's manifest


# -- preprocess ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["images_missing", "out_is_images", "out_inside_images", "ghost_id",
                                  "duplicate_ids"])
def test_preprocess_refused(case: str, cli, prepared: Path, tmp_path: Path) -> None:
    images, out = prepared / "images", tmp_path / "bins"
    extra: list[object] = []
    ids = tmp_path / "ids.txt"
    first = sorted(images.iterdir())[0].stem
    if case == "images_missing":
        images, says = tmp_path / "nope", ("nothing at",)
    elif case == "out_is_images":
        out, says = images, ("the input folder itself",)
    elif case == "out_inside_images":
        out, says = images / "bins", ("inside the input folder",)
    elif case == "ghost_id":
        ids.write_text(f"{first}\nghost\n")
        extra, says = ["--ids", ids], ("none for ghost",)
    else:
        ids.write_text(f"{first}\n{first}\n")
        extra, says = ["--ids", ids], ("expected each id once",)
    before = listing(tmp_path)
    r = cli("preprocess", images, out, *extra, "--no-progress")
    assert r.rc == 2 and "expected" in r.err and r.says(*says), r.err
    assert listing(tmp_path) == before


@pytest.mark.parametrize("damage, says", [
    ("zero_bytes", "an empty file (0 bytes)"),
    ("text_as_png", "do not start with the PNG signature"),
    ("wrong_size", "expected 96x96, found 40x56"),
])
def test_preprocess_bad_image_fails_alone(damage: str, says: str, cli, prepared: Path, tmp_path: Path) -> None:
    images = prepared / "images"
    bad = sorted(images.iterdir())[0]
    if damage == "zero_bytes":
        bad.write_bytes(b"")
    elif damage == "text_as_png":
        bad.write_text("hello")
    else:
        write_png(bad)
    r = cli("preprocess", images, tmp_path / "bins", "--no-progress")
    assert r.rc == 1 and r.says(bad.stem, says), r.err
    assert listing(tmp_path / "bins") == sorted([f"{p.stem}.bin" for p in images.iterdir() if p != bad] + [MANIFEST])


def test_preprocess_ids_crlf_blank_lines(cli, prepared: Path, tmp_path: Path) -> None:
    stems = sorted(p.stem for p in (prepared / "images").iterdir())[:2]
    (tmp_path / "ids.txt").write_bytes(("\r\n".join([stems[0], "", "  ", stems[1]]) + "\r\n").encode())
    r = cli("preprocess", prepared / "images", tmp_path / "bins", "--ids", tmp_path / "ids.txt", "--no-progress")
    assert r.rc == 0 and listing(tmp_path / "bins") == [f"{s}.bin" for s in stems] + [MANIFEST], r.err


def test_preprocess_disk_full(cli, prepared: Path, tmp_path: Path, tiny_disk: Path) -> None:
    (tiny_disk / "filler").write_bytes(b"\0" * 150_000)  # room for no 110,592-byte input
    r = cli("preprocess", prepared / "images", tiny_disk / "bins", "--no-progress")
    assert r.rc == 1 and r.says("no space left", "expected a writable location"), r.err
    assert listing(tiny_disk / "bins") == []  # no partial file under its final name, no temporary file, no folder


# -- where the data comes from (`unetpp run`) ---------------------------------------------------------------------
@pytest.mark.parametrize("case", ["missing", "no_stage1", "is_stage1", "env_missing"])
def test_run_data_given_must_hold_the_dataset(case: str, cli, root: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNETPP_DATA", raising=False)
    argv: list[object] = ["run", "-o", tmp_path / "runs"]
    if case == "missing":
        argv += ["--data", tmp_path / "nope"]
        says: tuple = ("--data", "nothing at", "nope")
    elif case == "no_stage1":
        (tmp_path / "empty" / "x").mkdir(parents=True)
        argv += ["--data", tmp_path / "empty"]
        says = ("no stage1_train/ in", "it holds: x")
    elif case == "is_stage1":
        argv += ["--data", root / "stage1_train"]
        says = ("is stage1_train itself", str(root))
    else:
        monkeypatch.setenv("UNETPP_DATA", str(tmp_path / "gone"))
        says = ("UNETPP_DATA=", "nothing at", "gone")
    r = cli(*argv)
    assert r.rc == 2 and r.says("expected a folder holding stage1_train/", *says), r.err
    assert not (tmp_path / "runs" / "synthetic_dsb").exists()  # never a silent synthetic fallback
