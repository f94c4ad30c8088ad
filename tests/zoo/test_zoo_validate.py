"""The zoo's own test (bioimageio.core) of the packages exported from the shipped models: offline, both formats."""

from __future__ import annotations

from pathlib import Path

import pytest

core = pytest.importorskip("bioimageio.core", reason="bioimageio.core is not installed (pip install -e '.[zoo]')")


def _failures(summary) -> list[str]:
    return [f"{d.name}: {[e.msg for e in d.errors]}" for d in summary.details if d.status == "failed"]


@pytest.mark.parametrize("package", ["shipped_package", "instance_package"])
def test_bioimageio_core_reproduces_both_weight_formats(package: str, request: pytest.FixtureRequest) -> None:
    """The guide model's package and the instance model's (2 output channels, a 2-page sample TIFF)."""
    summary = core.test_model(request.getfixturevalue(package), devices=["cpu"])
    assert summary.status == "passed", "\n".join(_failures(summary))
    names = [d.name for d in summary.details if d.status == "passed"]
    for fmt in ("onnx", "torchscript"):
        assert any(n.startswith("Reproduce test outputs from test inputs") and fmt in n for n in names), names


def test_bioimageio_core_accepts_the_low_level_writer(toy_package: Path) -> None:
    summary = core.test_model(toy_package, devices=["cpu"])
    assert summary.status == "passed", "\n".join(_failures(summary))
