"""The real shipped model behind the torch runtime (no ONNX export needed), built once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def shipped_runtime():
    from unetpp.model.checkpoint import shipped_checkpoint
    from unetpp.runtimes import get_runtime

    rt = get_runtime("torch", shipped_checkpoint(), threads=2)
    with rt:
        yield rt


@pytest.fixture(scope="session")
def shipped_instance_runtime():
    """The shipped instance model (2 outputs, its own scale rule) on the torch runtime: free height/width."""
    from unetpp.model.checkpoint import shipped_checkpoint
    from unetpp.runtimes import get_runtime

    rt = get_runtime("torch", shipped_checkpoint("instance"), threads=2)
    with rt:
        yield rt
