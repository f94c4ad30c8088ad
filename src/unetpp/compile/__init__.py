"""`unetpp compile`: optimised ONNX for ONNX Runtime, IR for OpenVINO, optionally int8 with an accuracy guard."""

from unetpp.compile.api import compile_model, report_path
from unetpp.compile.guard import AccuracyDropError

__all__ = ["AccuracyDropError", "compile_model", "report_path"]
