"""What every bench result records, in one shape: the machine, the command, the date, the commit and the load.

    from unetpp.bench.provenance import provenance, repo_root
    RESULTS = repo_root(__file__) / "bench" / "results"
    load_before = os.getloadavg()
    ...
    doc = {"results": ..., **provenance(load_before)}

`machine` is `unetpp.bench.machine.describe_machine()` (CPU, cores, memory, GPU, package versions); `command` is
the script as it was started, relative to the repository (`python bench/speed/fast_default.py --threads 2`);
`commit` the repository's HEAD (with `+dirty` when the tree differs), None outside a git checkout; the load
average at the start (when given) and at the end, because the numbers of a shared machine move with it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from unetpp.bench.machine import describe_machine


def repo_root(start: str | Path) -> Path:
    """The checkout a bench script lives in: the first folder above `start` holding pyproject.toml."""
    here = Path(start).resolve()
    for folder in [here, *here.parents]:
        if (folder / "pyproject.toml").is_file():
            return folder
    raise FileNotFoundError(f"no pyproject.toml above {here}: run bench scripts from a unetpp checkout")


def git_commit(root: Path) -> str | None:
    """HEAD of the checkout at `root`, '+dirty' appended when tracked files differ from it; None without git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def command_line(argv: list[str] | None = None, root: Path | None = None) -> str:
    """The command that started this process, the script's path relative to the checkout."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]) if argv else Path("?")
    if root is not None and script.is_absolute() and script.is_relative_to(root):
        script = script.relative_to(root)
    return shlex.join(["python", str(script), *argv[1:]])


def provenance(load_before: tuple[float, float, float] | None = None,
               argv: list[str] | None = None) -> dict[str, Any]:
    """machine, command, date (UTC), commit and load_average (start, end): to merge into a result document."""
    script = Path((sys.argv if argv is None else argv)[0] or ".")
    try:
        root: Path | None = repo_root(script.parent if script.name else Path.cwd())
    except FileNotFoundError:
        root = None
    load = {"end": [round(x, 2) for x in os.getloadavg()]}
    if load_before is not None:
        load = {"start": [round(x, 2) for x in load_before], **load}
    return {"machine": describe_machine(), "command": command_line(argv, root),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "commit": git_commit(root) if root else None, "load_average": load}
