"""Errors carry their structure: expected_found keeps what/expected/found/fix, the driver passes a failed item's
message on whole, and the server answers with those parts instead of parsing the text."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unetpp.core.driver import BatchWork, DriverSettings, run_pipeline
from unetpp.errors import InputError, expected_found, problem_of


def test_expected_found_keeps_its_parts_and_reads_as_the_message() -> None:
    p = expected_found("--min-area", "an integer >= 0", -1, "give 0 or more")
    assert p == "--min-area: expected an integer >= 0, found -1. give 0 or more"
    assert p.fields() == {"what": "--min-area", "expected": "an integer >= 0", "found": "-1",
                          "fix": "give 0 or more"}
    err = InputError(p)
    assert problem_of(err) is p and str(err) == p
    assert problem_of(InputError("a plain message")) is None


class _Failing(BatchWork):
    def prepare(self, item):
        if item == "bad":  # a value whose text a parser would split wrongly
            raise InputError(expected_found("image bad", "a PNG, found earlier", "a text file"))
        return None, [np.zeros((1, 3, 4, 4), np.float32)]

    def accept(self, state, start, outputs):
        pass

    def finish(self, item, state):
        return {}


class _Echo:
    active, max_in_flight, last_compute_ms, last_call_ms = True, 1, 0.0, 0.0

    def activate(self):
        return self

    def infer_padded(self, x):
        return x[:, :1], 0


def test_the_driver_passes_a_failed_items_parts_on() -> None:
    res = run_pipeline(["ok", "bad"], _Failing(), _Echo(), DriverSettings(batch_size=2, warmup=0))
    error = res.failures[0]["error"]
    assert problem_of(error).fields()["expected"] == "a PNG, found earlier"
    assert problem_of(error).found == "a text file"


def test_serve_answers_with_the_parts_not_a_parse(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("fastapi")
    from unetpp.serve.inputs import RequestError

    got = RequestError.from_error(422, InputError(expected_found("image x", "a PNG, found earlier", "text")))
    assert got.body() == {"error": "image x", "expected": "a PNG, found earlier", "found": "text"}
    option = RequestError.from_error(400, InputError(expected_found("--min-area", "an integer >= 0", -1)))
    assert option.body() == {"error": "bad value for min_area", "expected": "an integer >= 0", "found": "-1"}
    plain = RequestError.from_error(422, InputError("x: expected y, found z"))  # no parts: not parsed
    assert plain.body() == {"error": "x: expected y, found z", "expected": "", "found": ""}
