"""Library notices go through logging (the `unetpp` logger); the command line shows them as `unetpp: ...`."""

from __future__ import annotations

import logging
from pathlib import Path

from unetpp.log import cli_handler, logger


def test_cli_handler_prints_unetpp_prefixed_lines_on_stderr(capsys) -> None:
    handler = cli_handler()
    try:
        assert cli_handler() is handler  # installed once
        logger("runtimes").warning("a notice")
        logger().debug("not shown")
        assert capsys.readouterr().err == "unetpp: a notice\n"
    finally:
        logger().removeHandler(handler)
        logger().setLevel(logging.NOTSET)


def test_a_model_file_without_metadata_is_a_logged_notice(onnx_model: Path, tmp_path: Path, caplog, capsys) -> None:
    import onnx

    from unetpp.runtimes import get_runtime

    proto = onnx.load(str(onnx_model))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with caplog.at_level(logging.WARNING, logger="unetpp"), get_runtime("onnxruntime", bare) as rt:
        assert rt.preprocess.size == rt.input_shape[-1]
    notes = [r for r in caplog.records if r.name == "unetpp.runtimes"]
    assert len(notes) == 1 and "bare.onnx carries no preprocessing metadata" in notes[0].getMessage()
    assert "carries no preprocessing" not in capsys.readouterr().err  # a library prints nothing itself
