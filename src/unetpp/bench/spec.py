"""Backend specs for `unetpp bench`: NAME[:key=val,...], e.g. `onnxruntime`, `torch:device=cuda,dtype=fp16`.

Reserved keys: `label=` (the column name; default the spec text), `model=` (this backend's model file instead of
--model/--checkpoint) and `int8=PATH` (shorthand for model=PATH, labelled NAME-int8 by default). Every other key is
a runtime option; values 1/0/true/false become booleans where the option is a switch, digits become ints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from unetpp.errors import InputError, expected_found

SWITCHES = {"channels_last", "compile", "cuda_graphs"}


def _value(key: str, text: str) -> Any:
    low = text.lower()
    if key in SWITCHES and low in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        return low in ("1", "true", "yes", "on")
    if low.lstrip("-").isdigit():
        return int(low)
    return text


@dataclass(frozen=True)
class BackendSpec:
    """One column of the sweep."""

    label: str
    backend: str
    options: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "backend": self.backend, "options": dict(self.options), "model": self.model,
                "spec": self.text}


def parse_spec(text: str) -> BackendSpec:
    """Parse NAME[:key=val,...]; malformed pairs are an error naming the expected form."""
    text = text.strip()
    name, _, rest = text.partition(":")
    if not name:
        raise InputError(expected_found("backend spec", "NAME[:key=val,...]", repr(text)))
    options: dict[str, Any] = {}
    label, model = None, None
    for pair in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, val = pair.partition("=")
        if not eq or not key.strip() or not val.strip():
            raise InputError(expected_found(f"option {pair!r} in backend spec {text!r}", "key=value", repr(pair)))
        key, val = key.strip(), val.strip()
        if key == "label":
            label = val
        elif key == "model":
            model = val
        elif key == "int8":
            model, label = val, label or f"{name}-int8"
        else:
            options[key] = _value(key, val)
    return BackendSpec(label or text, name, options, model, text)


def parse_specs(texts: list[str]) -> list[BackendSpec]:
    """Several specs; labels must be unique (they name the report's columns and the cell files)."""
    specs = [parse_spec(t) for t in texts]
    seen: set[str] = set()
    for s in specs:
        if s.label in seen:
            raise InputError(expected_found("backend labels", "unique labels", f"{s.label!r} twice",
                                            "add label=NAME to one of the specs"))
        seen.add(s.label)
    return specs
