"""The two shipped models by name, what each declares, and how `--mode auto` follows the model."""

from __future__ import annotations

import pytest

from unetpp.errors import InputError
from unetpp.model.resolve import SHIPPED_MODELS, model_source
from unetpp.predict.image import PredictOptions
from unetpp.predict.work import resolve_mode
from unetpp.runtimes import open_runtime, resolve_model


def test_names_resolve_to_the_packaged_files() -> None:
    assert model_source(None) == SHIPPED_MODELS["guide"] == model_source("guide")
    assert model_source("instance") == SHIPPED_MODELS["instance"] and SHIPPED_MODELS["instance"].is_file()
    with pytest.raises(InputError, match="an existing model file"):
        resolve_model("instanc")  # a typo is a missing file, not a silent fallback


def test_each_shipped_model_states_its_outputs_and_scale() -> None:
    guide, inst = open_runtime("guide").activate(), open_runtime("instance").activate()
    assert guide.outputs == ["foreground"] and inst.outputs == ["foreground", "border"]
    assert (guide.metadata or {}).get("scale") is None
    assert inst.metadata["scale"]["rule"] == "nuclei@150"
    auto = PredictOptions()
    assert resolve_mode(auto, inst.metadata).mode == "tile"
    assert resolve_mode(auto, guide.metadata).mode == "resize"
    assert resolve_mode(PredictOptions(mode="resize"), inst.metadata).mode == "resize"  # an explicit mode stays
    guide.deactivate()
    inst.deactivate()


def test_the_instance_models_runtimes_carry_its_chosen_post_processing() -> None:
    """The seed setting chosen on the selection set (the checkpoint's meta) reaches predict through every runtime's
    metadata, not SeedParams' defaults (the two differ: t_border 0.45 chosen against 0.15)."""
    from unetpp.model.checkpoint import load_checkpoint
    from unetpp.predict.seeds import SeedParams

    chosen = load_checkpoint(SHIPPED_MODELS["instance"]).meta["seed_params"]
    assert SeedParams.from_dict(chosen) != SeedParams()
    for backend in ("onnxruntime", "torch"):
        with open_runtime("instance", backend=backend) as rt:
            assert rt.metadata["seed_params"] == chosen, backend


def test_a_freshly_trained_checkpoint_keeps_the_default_post_processing() -> None:
    """A training run's own seed_params are its held-out signal's, not a choice: only a checkpoint whose setting was
    chosen on the selection set (`selection` in its meta, bench/ship_instance.py) hands them to predict."""
    from unetpp.model.metadata import predict_facts

    trained = {"scale": {"rule": "nuclei@150"}, "seed_params": {"t_fg": 0.5}}
    assert predict_facts(trained) == {"scale": {"rule": "nuclei@150"}}
    assert predict_facts({**trained, "selection": {"report": "x"}})["seed_params"] == {"t_fg": 0.5}
    assert predict_facts(None) == {}
