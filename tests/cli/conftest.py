"""Fixtures of the fault corpus (defined in faultkit.py)."""

from faultkit import bins, cli, half_size_onnx, images, tiny_disk  # noqa: F401
