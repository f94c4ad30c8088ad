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
