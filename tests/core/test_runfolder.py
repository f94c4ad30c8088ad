"""RunFolder: the manifest and lock rules, directly (the CLI corpus in tests/cli checks them through commands)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unetpp.core.runfolder import LOCK, MANIFEST, RunFolder, differing_keys, refuse_overlap
from unetpp.errors import InputError, OutputError


def _quiet(msg: str) -> None:
    pass


def _run(path: Path, settings: dict, overwrite: bool = False, files: tuple[str, ...] = ("x",)) -> RunFolder:
    with RunFolder(path, settings, overwrite=overwrite, command="test", log=_quiet, files=files) as rf:
        for f in files:
            (path / f).parent.mkdir(parents=True, exist_ok=True)
            (path / f).write_text(json.dumps(settings))
        rf.finish({"n": len(files)})
    return rf


def test_manifest_states_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "r"
    rf = _run(out, {"a": 1})
    m = json.loads((out / MANIFEST).read_text())
    assert not rf.resumed and m["state"] == "complete" and m["settings"] == {"a": 1} and m["counts"] == {"n": 1}
    assert not (out / LOCK).exists()
    assert _run(out, {"a": 1}).resumed


def test_other_settings_refused_naming_nested_keys(tmp_path: Path) -> None:
    _run(tmp_path / "r", {"a": 1, "o": {"t": 0.5, "k": 1}})
    with pytest.raises(InputError, match=r"different a, o\.t"):
        _run(tmp_path / "r", {"a": 2, "o": {"t": 0.7, "k": 1}})
    assert differing_keys({"a": 1}, {"b": 1}) == ["a", "b"]


def test_exception_marks_partial_and_keeps_outputs(tmp_path: Path) -> None:
    out = tmp_path / "r"
    with pytest.raises(RuntimeError), RunFolder(out, {"a": 1}, log=_quiet):
        (out / "x").write_text("done")
        raise RuntimeError("boom")
    m = json.loads((out / MANIFEST).read_text())
    assert m["state"] == "partial" and m["error"] == "boom" and (out / "x").exists() and not (out / LOCK).exists()


def test_a_failed_run_that_wrote_nothing_leaves_no_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError), RunFolder(tmp_path / "a" / "b", {"a": 1}, log=_quiet):
        raise OutputError("disk gone")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_whole_or_puts_back(tmp_path: Path) -> None:
    out = tmp_path / "r"
    _run(out, {"a": 1}, files=("old1", "old2"))
    with pytest.raises(KeyboardInterrupt), RunFolder(out, {"a": 2}, overwrite=True, log=_quiet, files=["new"]):
        (out / "new").write_text("half")
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, "old1", "old2"])
    _run(out, {"a": 2}, overwrite=True, files=("new",))
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, "new"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_concurrent_run_is_refused_and_never_undoes_a_live_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "r"
    _run(out, {"a": 1}, files=("old",))
    with RunFolder(out, {"a": 2}, overwrite=True, log=_quiet, files=["new"]) as rf:
        assert (tmp_path / ".r.unetpp-old").is_dir()
        for settings in ({"a": 1}, {"a": 2}):
            with pytest.raises(OutputError, match="a run in progress"), RunFolder(out, settings, log=_quiet):
                pass
        assert (tmp_path / ".r.unetpp-old" / "old").exists() and (out / LOCK).exists()
        rf.finish({})
    assert not (tmp_path / ".r.unetpp-old").exists()


@pytest.mark.parametrize("out, relation", [("in", "the input folder itself"), ("in/o", "inside the input folder"),
                                           (".", "contains the input folder")])
def test_refuse_overlap(out: str, relation: str, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    with pytest.raises(InputError, match=relation):
        refuse_overlap(tmp_path / out, [tmp_path / "in"])
    refuse_overlap(tmp_path / "elsewhere", [tmp_path / "in", tmp_path / "in" / "file.bin"])


# -- never a file unetpp did not write ------------------------------------------------------------------------
def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("content", [["notes.txt"], ["raw.png", "sub/deep.csv"], [".hidden"]])
def test_a_folder_of_other_files_is_refused(content: list[str], tmp_path: Path) -> None:
    out = tmp_path / "thesis"
    for name in content:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("mine")
    before = _tree(out)
    with pytest.raises(InputError, match="a new or empty folder, or an earlier unetpp run folder"):
        _run(out, {"a": 1})
    assert _tree(out) == before


def test_an_empty_folder_and_a_lock_only_folder_are_taken(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _run(tmp_path / "empty", {"a": 1})
    assert json.loads((tmp_path / "empty" / MANIFEST).read_text())["files"] == ["x"]


def test_overwrite_removes_only_listed_files(tmp_path: Path) -> None:
    out = tmp_path / "r"
    _run(out, {"a": 1}, files=("old", "sub/old2"))
    (out / "notes.txt").write_text("the user's notes, added to the run folder later")
    (out / "sub" / "theirs.csv").write_text("1,2")
    _run(out, {"a": 2}, overwrite=True, files=("new",))
    assert _tree(out).keys() == {MANIFEST, "new", "notes.txt", "sub/theirs.csv"}
    assert (out / "notes.txt").read_text().startswith("the user's") and not (tmp_path / ".r.unetpp-old").exists()


def test_failed_overwrite_restores_old_files_and_keeps_other_files(tmp_path: Path) -> None:
    out = tmp_path / "r"
    _run(out, {"a": 1}, files=("x", "y"))
    (out / "notes.txt").write_text("mine")
    before = _tree(out)
    with pytest.raises(RuntimeError), RunFolder(out, {"a": 2}, overwrite=True, log=_quiet, files=["x", "z"]):
        (out / "x").write_text("new x")
        (out / "z").write_text("new z")
        raise RuntimeError("boom")
    assert _tree(out) == before


def test_a_planned_name_held_by_another_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "r"
    _run(out, {"a": 1}, files=("x",))
    (out / "y").write_text("mine")
    before = _tree(out)
    with pytest.raises(InputError, match="unetpp did not write.*y"):
        _run(out, {"a": 1}, files=("x", "y"))
    with pytest.raises(InputError, match="unetpp did not write.*y"):
        _run(out, {"a": 2}, overwrite=True, files=("y",))
    assert _tree(out) == before and not (tmp_path / ".r.unetpp-old").exists()


def test_plan_during_the_run_checks_and_lists(tmp_path: Path) -> None:
    out = tmp_path / "r"
    _run(out, {"a": 1})
    (out / "late").write_text("mine")
    with RunFolder(out, {"a": 1}, log=_quiet, files=["x"]) as rf:
        rf.plan([out / "more"])
        with pytest.raises(InputError, match="late"):
            rf.plan([out / "late"])
        rf.finish({})
    assert json.loads((out / MANIFEST).read_text())["files"] == ["more", "x"]


@pytest.mark.parametrize("moved", [0, 1, 2])
def test_an_overwrite_killed_while_moving_aside_is_undone(moved: int, tmp_path: Path) -> None:
    """What a kill -9 leaves at each step of an --overwrite: the backup manifest first, then some files moved."""
    out = tmp_path / "r"
    _run(out, {"a": 1}, files=("x", "y"))
    before = _tree(out)
    aside = tmp_path / ".r.unetpp-old"
    aside.mkdir()
    (aside / MANIFEST).write_bytes((out / MANIFEST).read_bytes())
    for name in ("x", "y")[:moved]:
        (out / name).rename(aside / name)
    _run(out, {"a": 1}, files=("x", "y"))  # the next run (same settings) puts everything back first
    assert {k: v for k, v in _tree(out).items() if k != MANIFEST} == {k: v for k, v in before.items()
                                                                      if k != MANIFEST}
    assert not aside.exists()


def test_an_overwrite_killed_mid_run_is_undone_on_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "r"
    _run(out, {"a": 1}, files=("x", "y"))
    (out / "mine.txt").write_text("mine")
    before = _tree(out)
    rf = RunFolder(out, {"a": 2}, overwrite=True, log=_quiet, files=["x", "z"])
    rf.__enter__()
    (out / "x").write_text("new x")
    (out / "z").write_text("new z")
    rf._release()  # killed: no __exit__, the lock's process is gone
    with pytest.raises(InputError, match="different a"):
        _run(out, {"a": 2}, files=("x", "z"))  # restored first, then refused as the old run's folder
    assert _tree(out) == before


def test_a_folder_of_another_command_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "r"
    _run(out, {"a": 1})
    with pytest.raises(InputError, match="a run folder of `unetpp test`"), \
            RunFolder(out, {"a": 1}, command="predict", log=_quiet):
        pass


def test_legacy_manifest_without_a_file_list(tmp_path: Path) -> None:
    out = tmp_path / "r"
    out.mkdir()
    (out / MANIFEST).write_text(json.dumps({"command": "test", "settings": {"a": 1}, "state": "complete"}))
    (out / "a_mask.png").write_text("old output")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="older unetpp"):
        _run(out, {"a": 2}, overwrite=True, files=("a_mask.png",))
    with RunFolder(out, {"a": 2}, overwrite=True, log=_quiet, files=["a_mask.png"],
                   legacy_patterns=("*_mask.png",), command="test") as rf:
        (out / "a_mask.png").write_text("new output")
        rf.finish({})
    assert _tree(out).keys() == {MANIFEST, "a_mask.png", "notes.txt"}


def test_legacy_names_mark_an_old_training_folder(tmp_path: Path) -> None:
    out = tmp_path / "train"
    out.mkdir()
    (out / "last.pt").write_text("state")
    with RunFolder(out, None, command="train", log=_quiet, files=["last.pt", "log.csv"],
                   legacy_names=("last.pt", "best.pt", "log.csv")) as rf:
        rf.finish({})
    (out / "notes.txt").unlink(missing_ok=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "last.pt").write_text("x")
    (other / "thesis.tex").write_text("x")
    with pytest.raises(InputError, match="thesis.tex"), RunFolder(other, None, command="train", log=_quiet,
                                                                  legacy_names=("last.pt",)):
        pass
