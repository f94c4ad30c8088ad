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
    with RunFolder(path, settings, overwrite=overwrite, command="test", log=_quiet) as rf:
        for f in files:
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
    with pytest.raises(KeyboardInterrupt), RunFolder(out, {"a": 2}, overwrite=True, log=_quiet):
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
    with RunFolder(out, {"a": 2}, overwrite=True, log=_quiet) as rf:
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
