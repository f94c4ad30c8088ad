"""One exception hierarchy. Messages say what was expected, what was found and, where known, the fix."""

from __future__ import annotations


class Problem(str):
    """A message made by expected_found that keeps its parts (what, expected, found, fix): a server answers with
    them as fields instead of parsing the text. It is the message itself wherever a string is wanted."""

    what: str
    expected: str
    found: str
    fix: str

    def fields(self) -> dict[str, str]:
        return {"what": self.what, "expected": self.expected, "found": self.found, "fix": self.fix}


def problem_of(error: object) -> Problem | None:
    """The structured message of an error (a UnetppError made from expected_found) or of a message, if it has one."""
    found = getattr(error, "problem", None) if isinstance(error, BaseException) else error
    return found if isinstance(found, Problem) else None


class UnetppError(Exception):
    """Base class: the CLI prints the message and exits non-zero without a traceback. An error made from
    expected_found carries its parts (`problem`)."""

    exit_code = 2

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.problem = args[0] if args and isinstance(args[0], Problem) else None


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


def expected_found(what: str, expected: object, found: object, fix: str = "") -> Problem:
    """Build the standard message: what, expected X, found Y[, fix] (a str that keeps its parts)."""
    msg = f"{what}: expected {expected}, found {found}"
    problem = Problem(f"{msg}. {fix}" if fix else msg)
    problem.what, problem.expected, problem.found, problem.fix = str(what), str(expected), str(found), str(fix)
    return problem
