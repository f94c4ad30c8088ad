"""The shipped models' cards (`weights/cards.json`): their published figures, keyed to each checkpoint by its
SHA-256, so that a model file is never shown with another file's figures. A swapped model has no card until its
figures are measured and written there (the tests of tests/model/test_cards.py say so)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from unetpp.model.sources import WEIGHTS

CARDS = WEIGHTS / "cards.json"


@lru_cache(maxsize=1)
def shipped_cards() -> dict[str, dict[str, Any]]:
    """name -> card (file, sha256, split, figures, summary, source)."""
    data = json.loads(CARDS.read_text())
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def card_for(path: str | Path, sha256: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """(name, card) of the shipped model whose checkpoint this file is (by SHA-256), else None."""
    if sha256 is None:
        from unetpp.atomic import file_sha256

        sha256 = file_sha256(path)
    for name, card in shipped_cards().items():
        if card.get("sha256") == sha256:
            return name, card
    return None
