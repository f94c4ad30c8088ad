"""One exception hierarchy. Messages say what was expected, what was found and, where known, the fix."""

from __future__ import annotations


class UnetppError(Exception):
    """Base class: the CLI prints the message and exits non-zero without a traceback."""

    exit_code = 2


class InputError(UnetppError):
    """A file or folder given by the user is missing, unreadable or of the wrong shape."""


class CheckpointError(UnetppError):
    """A checkpoint does not match the model it is loaded into."""


class ModelFileError(UnetppError):
    """A model file (ONNX, IR) cannot be read or is not what the runtime expects."""


class RuntimeUnavailable(UnetppError):
    """An optional runtime package is not installed or the device is absent."""


class OutputError(UnetppError):
    """An output location cannot be written."""


class Cancelled(UnetppError):
    """A run was cancelled by its caller (DriverSettings.cancel); outputs already written are complete files."""

    exit_code = 130


def expected_found(what: str, expected: object, found: object, fix: str = "") -> str:
    """Build the standard message: what, expected X, found Y[, fix]."""
    msg = f"{what}: expected {expected}, found {found}"
    return f"{msg}. {fix}" if fix else msg
