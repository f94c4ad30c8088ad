"""Every command in the README is run or checked, and every file it or docs/ names exists.

Run, in a temporary folder with this test's own model cache: `unetpp --help`, each `unetpp predict` line (on a
small real image placed where the README's example path says) and each Python block. Checked: every
`unetpp COMMAND --flag` names a command and flags that command's parser has; every `make TARGET` is a Makefile
target; every `pip install '.[extra]'` names an extra of pyproject.toml; every link and repository path in the
README and docs/*.md exists; the models' table quotes the cards' figures; no user-facing text cites internal issue
numbers. The doc checks read text only: a README that names a flag or file that does not exist fails here."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from unetpp.cli.main import COMMANDS, main

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
SAMPLE = REPO / "src" / "unetpp" / "napari" / "samples" / "dsb2018_fluorescence_9cdac287.png"
ISSUE_REF = re.compile(r"\bissues?\s*#?\d+|(?<![\w&/])#\d{1,4}\b(?![0-9a-fA-F])", re.IGNORECASE)
PATH_PREFIXES = ("src/", "bench/", "docs/", "tests/")


# -- reading the README ---------------------------------------------------------------------------------------------
def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def shell_commands(text: str) -> list[str]:
    """The commands of the text's bash blocks: continuation lines joined, comments and blank lines dropped."""
    out = []
    for block in code_blocks(text, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def words(command: str) -> list[str]:
    """A command's words up to its first comment, pipe or `&&`."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars="|&;")
    lexer.whitespace_split, lexer.commenters = True, "#"
    found = []
    for w in lexer:
        if w in ("|", "||", "&&", ";", "&"):
            break
        found.append(w)
    return found


def inline_commands(text: str) -> list[str]:
    """`unetpp ...` quoted inline in the prose (outside code blocks)."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return [c for c in re.findall(r"`(unetpp [^`]+)`", prose)]


def unetpp_commands(text: str) -> list[list[str]]:
    found = []
    for command in shell_commands(text) + inline_commands(text):
        w = words(command)
        while w and re.fullmatch(r"[A-Z_]+=\S*", w[0]):  # ENV=value unetpp ...
            w = w[1:]
        if w and w[0] == "unetpp":
            found.append(w)
    return found


@cache
def help_text(command: str) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        main([command, "--help"])
    return buf.getvalue()


def flags_of(command: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", help_text(command)))


def problems_with_command(w: list[str]) -> list[str]:
    """What a `unetpp ...` line names that does not exist."""
    if len(w) == 1 or w[1] in ("-h", "--help"):
        return []
    if w[1] not in COMMANDS:
        return [f"`{' '.join(w)}`: no command {w[1]!r}"]
    known = flags_of(w[1])
    named = [f for a in w[2:] for f in re.findall(r"(?:^|(?<=[\[(]))--?[A-Za-z][\w-]*", a)]  # [--flag V] too
    return [f"`{' '.join(w)}`: `unetpp {w[1]} --help` has no {flag}" for flag in named if flag not in known]


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", (REPO / "Makefile").read_text(), flags=re.MULTILINE))


def problems_with_make(command: str) -> list[str]:
    w = words(command)
    targets = [a for a in w[1:] if not a.startswith("-") and "=" not in a]
    missing = [t for t in targets if t not in make_targets()]
    variables = [a.split("=", 1)[0] for a in w[1:] if "=" in a]
    makefile = (REPO / "Makefile").read_text()
    unknown = [v for v in variables if not re.search(rf"\$\({v}\)", makefile)]
    return ([f"`{command}`: no Makefile target {t!r}" for t in missing]
            + [f"`{command}`: the Makefile uses no variable {v}" for v in unknown])


def problems_with_pip(command: str) -> list[str]:
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    found = []
    for arg in words(command):
        m = re.fullmatch(r"(?:\.|unetpp)\[([\w,-]+)\]", arg)
        if m:
            found += [f"`{command}`: no extra {e!r} in pyproject.toml" for e in m.group(1).split(",")
                      if e not in extras]
    return found


def linked_paths(doc: Path) -> list[tuple[str, Path]]:
    """(as written, resolved) for every relative link target and every repository path in backticks."""
    text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.MULTILINE | re.DOTALL)  # prose only
    found = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:|#", target):
            found.append((target, (doc.parent / target.split("#", 1)[0]).resolve()))
    for quoted in re.findall(r"`([^`\s]+)`", text):
        if quoted.startswith(PATH_PREFIXES) and not re.search(r"[<>{}*]|\.\.\.", quoted):
            found.append((quoted, REPO / quoted.split(":", 1)[0].rstrip(".,;")))
    return found


def doc_problems(doc: Path) -> list[str]:
    text = doc.read_text()
    name = doc.relative_to(REPO) if doc.is_relative_to(REPO) else doc
    found = [f"{name}: {p}" for w in unetpp_commands(text) for p in problems_with_command(w)]
    for command in shell_commands(text):
        w = words(command)
        if w[:1] == ["make"]:
            found += [f"{name}: {p}" for p in problems_with_make(command)]
        if w[:2] == ["pip", "install"]:
            found += [f"{name}: {p}" for p in problems_with_pip(command)]
    found += [f"{name}: {written} does not exist" for written, path in linked_paths(doc) if not path.exists()]
    return found


# -- the checks -------------------------------------------------------------------------------------------------------
def test_readme_is_a_door() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    commands = shell_commands(text)
    assert commands[:2] == ["make run     # the main job: sets up .venv, then prepare → export → preprocess → infer "
                            "→ evaluate → report", "make test    # the tests: sets up .venv, then ruff, the import "
                            "contract and pytest"]
    assert "source .venv/bin/activate" in commands and "docs/napari_segment_nuclei.png" in text


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_every_command_flag_target_and_file_named_exists(doc: Path) -> None:
    assert doc_problems(doc) == []


def test_the_doc_check_catches_a_flag_a_target_an_extra_and_a_file_that_do_not_exist(tmp_path: Path) -> None:
    bad = tmp_path / "README.md"
    bad.write_text(README.read_text().replace("unetpp predict my_images/ -o results/",
                                              "unetpp predict my_images/ -o results/ --colour red")
                   .replace("make test ", "make tests ").replace(".[openvino,serve,napari]", ".[openvino,gui]")
                   .replace("`src/unetpp/weights/cards.json`", "`src/unetpp/weights/card.json`"))
    found = "\n".join(doc_problems(bad))
    assert "has no --colour" in found and "no Makefile target 'tests'" in found
    assert "no extra 'gui'" in found and "src/unetpp/weights/card.json does not exist" in found
    assert "docs/serve.md does not exist" in found  # links resolve beside the document: none beside this copy


def test_the_models_table_quotes_the_cards() -> None:
    cards = json.loads((REPO / "src" / "unetpp" / "weights" / "cards.json").read_text())
    row = {name: next(line for line in README.read_text().splitlines() if line.startswith(f"| `{name}` |"))
           for name in ("instance", "guide")}
    inst = cards["instance"]["figures"]["full_resolution_tile_auto"]
    for key in ("dsb2018_map", "ap50", "pixel_iou"):
        assert f"{inst[key]:.4f}" in row["instance"], key
    guide = cards["guide"]["figures"]
    assert f"{guide['guide_iou_96px']:.4f}" in row["guide"]
    for key in ("pixel_iou", "dsb2018_map"):
        assert f"{guide['full_resolution_tile_auto'][key]:.4f}" in row["guide"], key


def test_no_internal_issue_numbers_in_user_facing_text() -> None:
    texts = {str(p.relative_to(REPO)): p.read_text() for p in [README, *DOCS]}
    texts.update({str(p.relative_to(REPO)): p.read_text() for p in (REPO / "src/unetpp/serve/static").iterdir()
                  if p.suffix != ".css"})
    cards = json.loads((REPO / "src" / "unetpp" / "weights" / "cards.json").read_text())
    texts.update({f"cards.json {k}": json.dumps(v) for k, v in cards.items() if isinstance(v, dict)})
    texts.update({f"unetpp {c} --help": help_text(c) for c in COMMANDS})
    cited = {where: ISSUE_REF.findall(text) for where, text in texts.items()}
    assert {k: v for k, v in cited.items() if v} == {}
    assert ISSUE_REF.findall("as issue 18 asked; see #12") == ["issue 18", "#12"]  # the pattern itself works


# -- the commands that are run ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A folder with `my_images/cells.png` (a real 256x256 DSB2018 image) and an environment whose `unetpp` is this
    checkout's, with a model cache of its own."""
    work = tmp_path_factory.mktemp("readme")
    (work / "my_images").mkdir()
    shutil.copy(SAMPLE, work / "my_images" / "cells.png")
    bin_dir = work / "bin"
    bin_dir.mkdir()
    (bin_dir / "unetpp").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m unetpp "$@"\n')
    (bin_dir / "unetpp").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "UNETPP_CACHE": str(tmp_path_factory.mktemp("readme_cache")),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    return work, env


def _runnable(w: list[str]) -> bool:
    return w[1:2] in (["--help"], ["-h"]) or (w[1:2] == ["predict"] and "--engine" not in w)


@pytest.mark.slow
def test_the_readmes_cli_lines_run_as_written(workdir: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    work, env = workdir
    runnable = [c for c in shell_commands(README.read_text()) if _runnable(words(c))]
    assert any(words(c)[1] == "predict" for c in runnable) and any(words(c)[1] == "--help" for c in runnable)
    for k, command in enumerate(runnable):
        here = tmp_path / f"cmd{k}"
        shutil.copytree(work / "my_images", here / "my_images")
        done = subprocess.run(command, shell=True, cwd=here, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        if words(command)[1] == "predict":
            out = here / words(command)[words(command).index("-o") + 1]
            for name in ("cells_labels.png", "cells_mask.png", "cells_nuclei.csv", "counts.csv",
                         "predict_summary.json"):
                assert (out / name).is_file(), f"{command}: no {name}"
            rows = (out / "cells_nuclei.csv").read_text().splitlines()
            assert len(rows) > 10  # a fluorescence field of a few dozen nuclei


@pytest.mark.slow
def test_the_readmes_python_runs_as_written(workdir: tuple[Path, dict[str, str]]) -> None:
    work, env = workdir
    blocks = code_blocks(README.read_text(), "python")
    assert blocks
    for block in blocks:
        done = subprocess.run([sys.executable, "-c", block], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{block}\n{done.stderr[-2000:]}"
        count = int(done.stdout.split()[0])
        assert count > 10 and "area" in done.stdout
