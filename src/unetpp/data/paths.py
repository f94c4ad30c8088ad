"""Where the DSB2018 data lives: --data, else $UNETPP_DATA, else ./data/dsb2018."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from unetpp.errors import InputError, expected_found

ENV_VAR = "UNETPP_DATA"
DEFAULT_DIR = Path("data/dsb2018")
HOW_TO_GET = (
    "Download the 2018 Data Science Bowl stage1_train set (BBBC038v1, CC0: https://bbbc.broadinstitute.org/BBBC038 "
    "or the Kaggle competition 'data-science-bowl-2018'), unzip it so that DIR/stage1_train/<id>/images/<id>.png "
    f"exists, then pass --data DIR or set {ENV_VAR}=DIR (default: ./{DEFAULT_DIR}). The guide's fixed split "
    "(val_ids.txt, train_ids.txt) ships with unetpp and is used where DIR holds none."
)
SPLITS = ("train", "val")


def describe_missing(root: Path) -> str:
    """What a path that should hold the dataset holds instead."""
    if not root.exists():
        return f"nothing at {root}"
    if not root.is_dir():
        return f"a file at {root}"
    if root.name == "stage1_train":
        return f"{root} is stage1_train itself (give the folder that holds it: {root.parent})"
    names = sorted(p.name for p in root.iterdir())[:6]
    held = ", ".join(names) if names else "nothing"
    return f"no stage1_train/ in {root} (it holds: {held})"


def resolve_data_dir(arg: str | Path | None = None, required: bool = True) -> Path | None:
    """The dataset root holding stage1_train/ (and optionally val_ids.txt, train_ids.txt).

    A path given (`arg`, else $UNETPP_DATA) must hold the dataset: otherwise an error naming the path and what is
    missing, whatever `required` says. Without one, ./data/dsb2018 is tried; not found there: None when not
    `required` (the caller's fallback, which must say so, naming `looked_in()`), else an error."""
    given = [(f"--data {arg}", Path(arg))] if arg else []
    if not given and os.environ.get(ENV_VAR):
        given = [(f"{ENV_VAR}={os.environ[ENV_VAR]}", Path(os.environ[ENV_VAR]))]
    for what, root in given:
        if (root / "stage1_train").is_dir():
            return root
        raise InputError(expected_found(f"DSB2018 dataset ({what})", "a folder holding stage1_train/",
                                        describe_missing(root), HOW_TO_GET))
    if (DEFAULT_DIR / "stage1_train").is_dir():
        return DEFAULT_DIR
    if not required:
        return None
    raise InputError(expected_found("DSB2018 dataset", "a folder holding stage1_train/",
                                    f"none given and {describe_missing(DEFAULT_DIR)}", HOW_TO_GET))


def looked_in() -> str:
    """Where resolve_data_dir looked when nothing was given (for the synthetic fallback's message)."""
    return f"--data not given, {ENV_VAR} not set, nothing usable at ./{DEFAULT_DIR} ({DEFAULT_DIR.resolve()})"


def shipped_split_file(split: str) -> Path:
    """The guide's fixed split shipped with unetpp (Ascend ModelZoo's nested_unet.diff: 536 train / 134 val ids of
    DSB2018 stage1_train; git blob ids 04e1163 and 2921bb6, src/unetpp/data/splits/SOURCE.md)."""
    if split not in SPLITS:
        raise InputError(expected_found("split", " or ".join(SPLITS), repr(split)))
    return Path(str(resources.files("unetpp.data").joinpath("splits", f"{split}_ids.txt")))


def split_ids_file(root: str | Path, split: str) -> Path:
    """DIR/<split>_ids.txt where the dataset root holds one, else the shipped guide split: a plain download of
    stage1_train (Kaggle, BBBC038) then works with --data DIR."""
    own = Path(root) / f"{split}_ids.txt"
    return own if own.is_file() else shipped_split_file(split)


def split_ids(root: str | Path, split: str) -> list[str]:
    """The ids of a split of the dataset at `root` (split_ids_file). The shipped split must name samples that
    stage1_train holds: otherwise an error saying how many are missing and what to do."""
    path = split_ids_file(root, split)
    ids = read_ids(path)
    if path == shipped_split_file(split):
        stage1 = Path(root) / "stage1_train"
        missing = [i for i in ids if not (stage1 / i).is_dir()]
        if missing:
            raise InputError(expected_found(
                f"{split} ids for {stage1}", f"the guide's {len(ids)} {split} ids of DSB2018 stage1_train "
                f"(no {split}_ids.txt in {root}, so the split shipped with unetpp is used)",
                f"{len(missing)} of them missing, e.g. {missing[0]}",
                f"For another dataset, put your own {split}_ids.txt (one id per line) in {root}."))
    return ids


def plain_name_problem(name: str) -> str | None:
    """Why `name` cannot name one file or folder inside an output folder (a separator, `..`, an absolute path,
    nothing), None when it can: ids and result folder names become output paths and must stay inside `-o`."""
    if not name or name in (".", ".."):
        return f"{name!r}"
    if "/" in name or "\\" in name or "\0" in name or Path(name).is_absolute():
        return f"{name!r} (a path: a name must not hold / or \\)"
    return None


def read_ids(path: str | Path) -> list[str]:
    """One id per line (CRLF and surrounding blanks ignored, blank lines skipped); order kept; a duplicate is an
    error naming it (it would be counted twice), so is an id that is a path (`../x`, `/x`, `a/b`: ids name output
    files, which must stay inside the output folder)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise InputError(expected_found(f"ids file {path}", "UTF-8 text, one id per line", "binary data")) from None
    except OSError as exc:
        raise InputError(f"ids file {path}: expected a readable text file, found {exc.strerror or exc}") from None
    ids = [s.strip() for s in lines if s.strip()]
    if not ids:
        raise InputError(f"ids file {path}: expected one id per line, found no ids")
    for n, s in enumerate(lines, 1):
        problem = plain_name_problem(s.strip()) if s.strip() else None
        if problem:  # an id names output files: `../x` would write outside the output folder
            raise InputError(expected_found(f"ids file {path}", "one id per line, each a plain name",
                                            f"{problem} on line {n}"))
    seen: dict[str, int] = {}
    for n, s in enumerate(lines, 1):
        s = s.strip()
        if s and s in seen:
            raise InputError(expected_found(f"ids file {path}", "each id once",
                                            f"{s!r} on lines {seen[s]} and {n}"))
        seen.setdefault(s, n)
    return ids
