"""The package's import graph has no circles (lazy imports inside functions count too): each room's modules
build on the ones below them, so any module can be read, tested and imported without its callers."""

from __future__ import annotations

import pytest

grimp = pytest.importorskip("grimp")


def test_no_module_reaches_back_to_a_module_that_imports_it() -> None:
    graph = grimp.build_graph("unetpp")
    circles = sorted({tuple(sorted((m, n))) for m in graph.modules for n in graph.find_modules_directly_imported_by(m)
                      if graph.chain_exists(n, m)})
    assert circles == [], f"import circles: {circles}"
