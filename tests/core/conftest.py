"""One local Ray (2 CPUs) shared by the engine tests: its start-up is the slow part."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(scope="session")
def ray_session():
    """The engine uses an already initialised Ray as it is and leaves it up; this fixture shuts it down."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'unetpp[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()
