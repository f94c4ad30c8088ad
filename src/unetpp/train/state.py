"""The full training state (`last.pt`): model, optimizer, scheduler, epoch, RNG states, best so far, log."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unetpp.atomic import atomic_path
from unetpp.errors import CheckpointError, OutputError, expected_found

STATE_FORMAT = "unetpp-train-state"
STATE_VERSION = 1


def _np_state_plain() -> list[Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)]


def capture_rng() -> dict[str, Any]:
    """Global RNG states (the recipe derives its randomness from (seed, epoch); these are kept for completeness)."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _np_state_plain(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def refuse_to_overwrite(out: Path, last_path: Path, resume: bool) -> None:
    """A fresh run never starts over a previous run's state: --resume continues it, or another folder is chosen."""
    if not resume and last_path.exists():
        raise OutputError(expected_found(f"output folder {out}", "no previous run", f"a run's state at {last_path}",
                                         "Pass --resume to continue it, or choose another --out."))


def save_state(path: str | Path, **fields: Any) -> Path:
    """Write the training state atomically (a crash mid-write leaves the previous last.pt intact)."""
    path = Path(path)
    obj = {"format": STATE_FORMAT, "version": STATE_VERSION, "rng": capture_rng(), **fields}
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a `last.pt` written by save_state (onto the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(expected_found("training state to resume", f"a file at {path}", "nothing",
                                             "Run without --resume to start a new run."))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise CheckpointError(expected_found(f"training state {path}", "a file torch can read",
                                             f"{type(exc).__name__}: {str(exc)[:200]}")) from None
    if not isinstance(obj, dict) or obj.get("format") != STATE_FORMAT:
        raise CheckpointError(expected_found(f"training state {path}", f"format {STATE_FORMAT!r}",
                                             repr(obj.get("format")) if isinstance(obj, dict) else type(obj).__name__))
    return obj


def check_resumable(state: dict[str, Any], identity: dict[str, Any], path: Path) -> None:
    """Refuse to resume a run whose configuration or split differs from the saved one, naming the differences."""
    diffs = []
    for key, now in identity.items():
        then = state.get(key)
        if isinstance(now, dict) and isinstance(then, dict):
            diffs += [f"{key}.{k}: saved {then.get(k)!r}, now {now.get(k)!r}"
                      for k in sorted(set(now) | set(then)) if then.get(k) != now.get(k)]
        elif then != now:
            diffs.append(f"{key}: saved {len(then or [])} ids, now {len(now)} (or a different order)")
    if diffs:
        raise CheckpointError(expected_found(f"resume from {path}", "the same configuration and split as the saved run",
                                             "differences: " + "; ".join(diffs),
                                             "Resume with the original options, or start a new --out."))


def resume_run(path: Path, identity: dict[str, Any], model: Any, optimizer: Any, scheduler: Any,
               ema: Any = None) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    """Load a run's full state into model, optimizer, scheduler, the weight average (when the run keeps one) and
    the RNGs: (epochs done, log, best)."""
    state = load_state(path)
    check_resumable(state, identity, path)
    if ema is not None:
        if "ema" not in state:
            raise CheckpointError(expected_found(f"training state {path}", "a weight average (the run keeps one)",
                                                 "none saved"))
        ema.load_state_dict(state["ema"])
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    restore_rng(state["rng"])
    return int(state["epoch"]), list(state["log"]), dict(state["best"])
