"""The zoo's own test (bioimageio.core) of the package exported from the shipped checkpoint: offline, both formats."""

from __future__ import annotations

from pathlib import Path

import pytest

core = pytest.importorskip("bioimageio.core", reason="bioimageio.core is not installed (pip install -e '.[zoo]')")


def _failures(summary) -> list[str]:
    return [f"{d.name}: {[e.msg for e in d.errors]}" for d in summary.details if d.status == "failed"]


def test_bioimageio_core_reproduces_both_weight_formats(shipped_package: Path) -> None:
    summary = core.test_model(shipped_package, devices=["cpu"])
    assert summary.status == "passed", "\n".join(_failures(summary))
    names = [d.name for d in summary.details if d.status == "passed"]
    for fmt in ("onnx", "torchscript"):
        assert any(n.startswith("Reproduce test outputs from test inputs") and fmt in n for n in names), names


def test_bioimageio_core_accepts_the_low_level_writer(toy_package: Path) -> None:
    summary = core.test_model(toy_package, devices=["cpu"])
    assert summary.status == "passed", "\n".join(_failures(summary))
