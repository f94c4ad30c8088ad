"""Which output depth (UNet++ pruning, X0,d) a model runs at: the one asked for, else the model's own
`default_depth` (its checkpoint's meta, then its card), else 4 (the full network). A depth below 4 needs the
deep-supervision heads final1..final3; a model without them is refused in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unetpp.errors import InputError, expected_found

DEPTHS = (1, 2, 3, 4)
FULL_DEPTH = 4


def default_depth(meta: dict[str, Any] | None, path: str | Path | None = None) -> int:
    """The model's own choice: `default_depth` in its checkpoint meta, else on its card, else 4."""
    found = (meta or {}).get("default_depth")
    if found is None and path is not None:
        from unetpp.model.cards import card_for

        card = card_for(path)
        found = card[1].get("default_depth") if card else None
    return int(found) if found is not None else FULL_DEPTH


def choose_depth(requested: int | None, deep_supervision: bool, meta: dict[str, Any] | None = None,
                 path: str | Path | None = None) -> int:
    """The depth to run at; refuses one outside 1..4, and one below 4 for a model without deep supervision."""
    depth = default_depth(meta, path) if requested is None else requested
    if depth not in DEPTHS:
        raise InputError(expected_found("--depth", "1, 2, 3 or 4", depth))
    if depth < FULL_DEPTH and not deep_supervision:
        name = Path(path).name if path is not None else "this model"
        raise InputError(expected_found(
            f"--depth {depth}", "a model trained with deep supervision (heads on X0,1..X0,4)",
            f"{name} without them (it answers only at depth 4)",
            "Drop --depth, or train with `unetpp train-instance --deep-supervision`"))
    return int(depth)
