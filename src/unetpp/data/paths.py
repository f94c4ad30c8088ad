"""Where the DSB2018 data lives: --data, else $UNETPP_DATA, else ./data/dsb2018."""

from __future__ import annotations

import os
from pathlib import Path

from unetpp.errors import InputError

ENV_VAR = "UNETPP_DATA"
DEFAULT_DIR = Path("data/dsb2018")
HOW_TO_GET = (
    "Download the 2018 Data Science Bowl stage1_train set (BBBC038v1, CC0: https://bbbc.broadinstitute.org/BBBC038 "
    "or the Kaggle competition 'data-science-bowl-2018'), unzip it so that DIR/stage1_train/<id>/images/<id>.png "
    f"exists, then pass --data DIR or set {ENV_VAR}=DIR (default: ./{DEFAULT_DIR})."
)


def resolve_data_dir(arg: str | Path | None = None, required: bool = True) -> Path | None:
    """The dataset root holding stage1_train/ (and optionally val_ids.txt, train_ids.txt)."""
    candidates = [Path(arg)] if arg else []
    if not arg and os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    if not arg:
        candidates.append(DEFAULT_DIR)
    for c in candidates:
        if (c / "stage1_train").is_dir():
            return c
    if not required:
        return None
    tried = ", ".join(str(c) for c in candidates)
    raise InputError(f"DSB2018 dataset: expected a folder holding stage1_train/, found none at {tried}. {HOW_TO_GET}")


def read_ids(path: str | Path) -> list[str]:
    """One id per line; blank lines ignored; order kept."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise InputError(f"ids file {path}: expected a readable text file, found {exc.strerror or exc}") from None
    ids = [s.strip() for s in lines if s.strip()]
    if not ids:
        raise InputError(f"ids file {path}: expected one id per line, found no ids")
    return ids
