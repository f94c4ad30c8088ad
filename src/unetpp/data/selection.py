"""The selection set: train ids that training never sees, on which checkpoints and post-processing are chosen.

A quarter of the 536 train ids, stratified so that it holds each kind of image in the proportion the train split
does: modality (fluorescence / brightfield / stained, unetpp.eval.modality's rule), image size (small <= 256x320,
medium, large >= 512x640) and crowding (nuclei per image in thirds of the train split). Within each stratum the ids
are drawn by a seeded permutation; ids named in `always` (the 64 ids the shipped instance model never trained on)
are placed first and count towards their stratum's share. The shipped file is
`unetpp/data/splits/selection_ids.txt`, written by `bench/accuracy/selection_split.py` with the strata of every id.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from unetpp.data.paths import read_ids
from unetpp.errors import InputError, expected_found

SHIPPED = "shipped"
SIZE_CLASSES = ((256 * 320, "small"), (512 * 640, "medium"))


def shipped_selection_path() -> Path:
    return Path(str(resources.files("unetpp.data").joinpath("splits", "selection_ids.txt")))


def size_class(height: int, width: int) -> str:
    px = height * width
    for limit, name in SIZE_CLASSES:
        if px <= limit:
            return name
    return "large"


def crowding_classes(counts: Mapping[str, int]) -> dict[str, str]:
    """'sparse' / 'medium' / 'crowded' by the thirds of the nucleus counts given."""
    values = np.array(list(counts.values()), np.float64)
    lo, hi = np.percentile(values, [100 / 3, 200 / 3]) if values.size else (0.0, 0.0)
    return {k: "sparse" if v <= lo else "medium" if v <= hi else "crowded" for k, v in counts.items()}


def stratified_selection(strata: Mapping[str, str], fraction: float, seed: int,
                         always: Iterable[str] = ()) -> list[str]:
    """Ids chosen per stratum: round(fraction * n) of each (at least one where a stratum has two or more), the
    `always` ids first; returned in the order of `strata`."""
    if not 0 < fraction < 1:
        raise InputError(expected_found("selection fraction", "a number between 0 and 1", fraction))
    forced = set(always)
    unknown = forced - set(strata)
    if unknown:
        raise InputError(expected_found("ids to always select", "ids of the split", f"{sorted(unknown)[:3]} ..."))
    groups: dict[str, list[str]] = defaultdict(list)
    for id_, key in strata.items():
        groups[key].append(id_)
    rng = np.random.default_rng(seed)
    chosen: set[str] = set()
    for key in sorted(groups):
        ids = groups[key]
        want = max(1, math.floor(fraction * len(ids) + 0.5)) if len(ids) >= 2 else 0
        pinned = [i for i in ids if i in forced]
        rest = [ids[i] for i in rng.permutation(len(ids)) if ids[i] not in forced]
        chosen.update(pinned + rest[:max(0, want - len(pinned))])
    return [i for i in strata if i in chosen]


def resolve_selection(spec: str, train_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """(fit ids, selection ids) for a selection ids file (or "shipped"): every selection id must be a train id."""
    path = shipped_selection_path() if spec == SHIPPED else Path(spec)
    chosen = read_ids(path)
    missing = sorted(set(chosen) - set(train_ids))
    if missing:
        raise InputError(expected_found(f"selection ids ({path})", "ids from the train split",
                                        f"{len(missing)} that are not, e.g. {missing[0]}"))
    held = set(chosen)
    return [i for i in train_ids if i not in held], [i for i in train_ids if i in held]
