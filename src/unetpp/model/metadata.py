"""What a model file says about itself: one JSON document under the key `unetpp` in the ONNX `metadata_props`
(and in an OpenVINO IR's rt_info), so every runtime knows the preprocessing and the outputs of the model it runs.

    {"format": 1, "model": {...ModelConfig...}, "preprocess": {...PreprocessConfig...},
     "outputs": ["foreground"], "output_kind": "logits", "thresholds": {...meaning of each threshold...},
     "spatial": {"dynamic": true, "step": 16}}   # only in an export with free height/width

A file whose input height/width are symbolic runs at other sizes only where `spatial` says so (and at which step):
without it a runtime keeps refusing free sizes (an unknown model's free axes say nothing about what it accepts).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unetpp.config import ModelConfig, PreprocessConfig

METADATA_KEY = "unetpp"
FORMAT = 1
THRESHOLD_MEANINGS = {
    "logit_threshold": "the guide's decision: raw logit > logit_threshold (0.5 = probability 0.6225)",
    "prob_threshold": "predict's decision: sigmoid(logit) >= prob_threshold",
}


def default_outputs(num_classes: int) -> list[str]:
    return ["foreground"] if num_classes == 1 else ["foreground", "border", *[f"channel{i}" for i in
                                                                             range(2, num_classes)]][:num_classes]


# What a checkpoint's meta tells predict: the instance model's scale rule, and its seed post-processing where that
# was chosen on the selection set (bench/ship_instance.py records the choice under `selection`); a freshly trained
# checkpoint's `seed_params` are only its training signal's, so predict keeps SeedParams' defaults for it.
PREDICT_KEYS = ("scale", "seed_params")
# Raised when what predict_facts carries changes: a cached export without them is made again (model/resolve.py).
FACTS_VERSION = 2


def predict_facts(checkpoint_meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """The part of a checkpoint's meta that a model file carries to predict (see PREDICT_KEYS)."""
    meta = checkpoint_meta or {}
    facts = {k: meta[k] for k in PREDICT_KEYS if k in meta}
    if "seed_params" in facts and not meta.get("selection"):
        del facts["seed_params"]
    return facts


def build_metadata(config: ModelConfig, preprocess: PreprocessConfig, outputs: list[str] | None = None,
                   **extra: Any) -> dict[str, Any]:
    return {"format": FORMAT, "model": config.to_dict(), "preprocess": preprocess.to_dict(),
            "outputs": list(outputs or default_outputs(config.num_classes)), "output_kind": "logits",
            "thresholds": THRESHOLD_MEANINGS, **extra}


SIZE_STEP = 16  # NestedUNet: four 2x poolings, so H and W must be multiples of 16


def spatial_meta(step: int = SIZE_STEP) -> dict[str, Any]:
    """The `spatial` entry of an export with dynamic height/width."""
    return {"dynamic": True, "step": int(step)}


def free_size_by_default(checkpoint_meta: Mapping[str, Any] | None) -> bool:
    """Whether a model runs at free height/width unless told otherwise: a model trained at a normalised scale
    (its checkpoint states a scale rule: the instance model, run on whole images or large windows); the guide model
    keeps the guide's fixed 96x96. The same answer for the ONNX export and the torch runtime."""
    return bool((checkpoint_meta or {}).get("scale"))


def free_size_spec(meta: Mapping[str, Any] | None) -> tuple[int | None, int]:
    """(the step H/W must be multiples of, or None where the file does not declare free sizes; the nominal size)."""
    meta = meta or {}
    spatial = meta.get("spatial") or {}
    nominal = int((meta.get("preprocess") or {}).get("size") or 96)
    step = spatial.get("step") if spatial.get("dynamic") else None
    return (int(step) if isinstance(step, int) and step > 0 else None), nominal


def to_props(meta: Mapping[str, Any]) -> dict[str, str]:
    return {METADATA_KEY: json.dumps(meta, sort_keys=True)}


def from_props(props: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The document from a key/value map (ONNX metadata_props, ORT's custom_metadata_map), None if absent or bad."""
    raw = (props or {}).get(METADATA_KEY)
    if not raw:
        return None
    try:
        meta = json.loads(raw)
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


def read_onnx_metadata(path: str | Path) -> dict[str, Any] | None:
    """Read the document from an ONNX file (the graph's weights are not needed: external data is not loaded)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - a file onnx cannot parse has no metadata to give
        return None
    return from_props({p.key: p.value for p in proto.metadata_props})


def write_onnx_metadata(proto: Any, meta: Mapping[str, Any]) -> None:
    """Set (replace) the document in an onnx.ModelProto in memory."""
    keep = [p for p in proto.metadata_props if p.key != METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for k, v in to_props(meta).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
