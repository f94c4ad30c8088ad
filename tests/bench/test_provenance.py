"""One provenance record for every bench result: machine, command relative to the checkout, commit, load."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from unetpp.bench.provenance import command_line, provenance, repo_root

REPO = Path(__file__).resolve().parents[2]


def test_repo_root_is_found_from_a_bench_script_at_any_depth() -> None:
    assert repo_root(REPO / "bench" / "speed" / "fast_default.py") == REPO
    assert repo_root(REPO / "bench" / "int8_check" / "pipelines.py") == REPO


def test_the_record_names_the_script_as_run_from_the_checkout() -> None:
    argv = [str(REPO / "bench" / "speed" / "serve_load.py"), "--soak", "20", "--include", "labels,mask"]
    rec = provenance((1.0, 2.0, 3.0), argv=argv)
    assert rec["command"] == "python bench/speed/serve_load.py --soak 20 --include labels,mask"
    assert command_line(["x.py", "a b"]) == "python x.py 'a b'"
    assert rec["load_average"]["start"] == [1.0, 2.0, 3.0] and len(rec["load_average"]["end"]) == 3
    assert {"cpu", "cores", "usable_cores", "os", "python", "versions"} <= set(rec["machine"])
    assert rec["date"].endswith("UTC")


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="not a git checkout")
def test_the_record_carries_the_checkouts_commit() -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    rec = provenance(argv=[str(REPO / "bench" / "speed" / "x.py")])
    assert rec["commit"].removesuffix("+dirty") == head


def test_no_bench_script_puts_a_folder_on_sys_path() -> None:
    """Shared code is imported as a module (unetpp.bench, bench.int8_check), never found through sys.path edits;
    the selection scripts kept at bench/'s top are their owner's."""
    kept = {"instance_select.py", "instance_seeds.py", "ship_instance.py", "predict_speed.py"}
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "bench").rglob("*.py")
                 if p.name not in kept and "sys.path.insert" in p.read_text()]
    assert offenders == []
