"""Library notices go through `logging`, under the `unetpp` logger (a library adds no handler of its own: an
application decides what it shows). The command line shows them on stderr as `unetpp: <message>` (cli_handler)."""

from __future__ import annotations

import logging
import sys

LOGGER_NAME = "unetpp"
PREFIX = "unetpp: "


def logger(part: str | None = None) -> logging.Logger:
    """The `unetpp` logger, or its child `unetpp.<part>`."""
    return logging.getLogger(LOGGER_NAME if not part else f"{LOGGER_NAME}.{part}")


class _CliHandler(logging.StreamHandler):
    """stderr as it is at each record (a test's captured stream included), one `unetpp: ...` line per notice."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(PREFIX + "%(message)s"))

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201 - logging's own attribute
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # noqa: ANN001 - StreamHandler sets it once; stderr is read each time
        pass


def cli_handler(level: int = logging.INFO) -> logging.Handler:
    """Show the library's notices (INFO and above) on stderr as `unetpp: <message>`; installed once."""
    root = logger()
    for h in root.handlers:
        if isinstance(h, _CliHandler):
            return h
    handler = _CliHandler()
    root.addHandler(handler)
    root.setLevel(level)
    return handler


logger().addHandler(logging.NullHandler())
