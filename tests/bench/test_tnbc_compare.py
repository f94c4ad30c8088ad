"""bench/tnbc_compare.py scores a candidate's weights with the shipped model's post-processing: its evaluation copy
must carry that setting in the form predict applies (unetpp.model.metadata.predict_facts), or the comparison is of
post-processings (it was, until 2026-12-08: bench/results/instance_training_tnbc.md, "Correction")."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from unetpp.model.checkpoint import load_checkpoint, save_checkpoint
from unetpp.model.metadata import predict_facts
from unetpp.predict.seeds import SeedParams

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "tnbc_compare.py"


def _script():
    spec = importlib.util.spec_from_file_location("tnbc_compare", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _with_meta(src: Path, out: Path, **meta) -> Path:
    ck = load_checkpoint(src)
    return save_checkpoint(out, ck.model, ck.preprocess, meta={**ck.meta, **meta})


def test_the_evaluation_copy_runs_the_shipped_post_processing(random_checkpoint: Path, tmp_path: Path) -> None:
    chosen = {**SeedParams().to_dict(), "t_fg": 0.6, "t_border": 0.45, "min_mean_fg": 0.85}
    shipped = _with_meta(random_checkpoint, tmp_path / "shipped.pt", seed_params=chosen, default_depth=3,
                         selection={"chosen": {"map": 0.59}})
    trained = {**SeedParams().to_dict(), "t_fg": 0.5}  # a fresh run's training-signal setting: never applied
    candidate = _with_meta(random_checkpoint, tmp_path / "candidate.pt", seed_params=trained)
    assert "seed_params" not in predict_facts(load_checkpoint(candidate).meta)

    copy = _script().eval_copy(candidate, shipped, tmp_path / "copy.pt")
    meta = load_checkpoint(copy).meta
    assert predict_facts(meta)["seed_params"] == chosen
    assert meta["seed_params_training"] == trained and meta["default_depth"] == 3


def test_a_shipped_model_without_a_choice_is_refused(random_checkpoint: Path, tmp_path: Path) -> None:
    unchosen = _with_meta(random_checkpoint, tmp_path / "shipped.pt",
                          seed_params={**SeedParams().to_dict(), "t_fg": 0.6})
    with pytest.raises(SystemExit, match="would not apply"):
        _script().eval_copy(random_checkpoint, unchosen, tmp_path / "copy.pt")
