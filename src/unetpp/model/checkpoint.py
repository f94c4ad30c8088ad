"""Checkpoints: upstream's plain state dict (+ config.yml) and our own self-describing format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from unetpp.atomic import atomic_path, file_sha256  # noqa: F401 - file_sha256 re-exported
from unetpp.config import ModelConfig, PreprocessConfig
from unetpp.errors import CheckpointError, InputError, expected_found
from unetpp.model.network import NestedUNet, build_model
from unetpp.model.sources import model_source, shipped_checkpoint  # noqa: F401 - re-exported (torch-free home)

FORMAT = "unetpp-checkpoint"
FORMAT_VERSION = 1


def _read_config_yml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CheckpointError(f"{path}: expected a YAML mapping, found unreadable text ({exc})") from None
    return data if isinstance(data, dict) else {}


def _config_from_upstream(cfg: dict[str, Any], state: dict[str, torch.Tensor]) -> ModelConfig:
    final = state.get("final.weight")
    num_classes = int(cfg.get("num_classes", final.shape[0] if final is not None else 1))
    in_ch = int(cfg.get("input_channels", state["conv0_0.conv1.weight"].shape[1]))
    ds = bool(cfg.get("deep_supervision", "final1.weight" in state))
    return ModelConfig(num_classes=num_classes, input_channels=in_ch, deep_supervision=ds)


def strip_prefix(state: dict[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def load_state_strict(model: NestedUNet, state: dict[str, torch.Tensor], source: str) -> None:
    """Load weights; any missing key, unexpected key or shape mismatch is one error listing them all."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: model {tuple(own[k].shape)} vs checkpoint {tuple(state[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(own[k].shape) != tuple(state[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {', '.join(missing[:20])}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:20])}")
        if shapes:
            parts.append(f"shape mismatches ({len(shapes)}): {'; '.join(shapes[:20])}")
        raise CheckpointError(f"{source} does not match NestedUNet({model.config}):\n  " + "\n  ".join(parts))
    model.load_state_dict(state, strict=True)


class LoadedCheckpoint:
    """A model in eval mode plus the configuration that came with it."""

    def __init__(self, model: NestedUNet, preprocess: PreprocessConfig, path: Path, meta: dict[str, Any]):
        self.model = model
        self.preprocess = preprocess
        self.path = path
        self.meta = meta

    @property
    def config(self) -> ModelConfig:
        return self.model.config


def load_checkpoint(path: str | Path | None = None, up_mode: str | None = None) -> LoadedCheckpoint:
    """Load a unetpp .pt or an upstream state-dict .pth (reading config.yml beside it when present).

    `up_mode` overrides the upsampling (upstream files do not record it; the guide's default is nearest).
    """
    path = model_source(path)  # None: the shipped guide model; "guide"/"instance": a shipped model by name
    if not path.is_file():
        raise InputError(expected_found("checkpoint", "a file", f"nothing at {path}"))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise CheckpointError(
            f"{path}: expected a PyTorch checkpoint (state dict or unetpp .pt), found a file torch cannot read "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from None
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        cfg = ModelConfig.from_dict(obj["model_config"])
        if up_mode:
            cfg = ModelConfig(**{**cfg.to_dict(), "up_mode": up_mode})
        pre = PreprocessConfig.from_dict(obj.get("preprocess", {}))
        state, meta = obj["state_dict"], dict(obj.get("meta", {}))
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = strip_prefix(obj)
        yml = path.with_name("config.yml")
        upstream_cfg = _read_config_yml(yml) if yml.is_file() else {}
        if "conv0_0.conv1.weight" not in state:
            raise CheckpointError(
                f"{path}: expected a NestedUNet state dict (keys like conv0_0.conv1.weight), "
                f"found keys such as {', '.join(list(state)[:5])}"
            )
        cfg = _config_from_upstream(upstream_cfg, state)
        cfg = ModelConfig(**{**cfg.to_dict(), "up_mode": up_mode or "nearest"})
        pre = PreprocessConfig(size=int(upstream_cfg.get("input_h", 96)))
        meta = {"source": "upstream state dict", "config_yml": upstream_cfg}
    else:
        raise CheckpointError(
            f"{path}: expected a state dict or a unetpp checkpoint, found a {type(obj).__name__}"
        )
    model = build_model(cfg)
    load_state_strict(model, state, str(path))
    model.eval()
    return LoadedCheckpoint(model, pre, path, meta)


def save_checkpoint(
    path: str | Path,
    model: NestedUNet,
    preprocess: PreprocessConfig | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write our own format atomically: weights plus the model and pre-processing configuration."""
    path = Path(path)
    obj = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "preprocess": (preprocess or PreprocessConfig()).to_dict(),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "meta": meta or {},
    }
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path

