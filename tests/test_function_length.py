"""No function in src/ over MAX_LINES lines (its `def` to its last line, decorators aside): a long function wants
small named parts (docs: DESIGN.md, "Small named parts over long functions")."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "unetpp"
MAX_LINES = 100


def long_functions(root: Path, limit: int) -> list[tuple[str, str, int]]:
    """(file relative to root, function name, lines) of every function or method over `limit` lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append((path.relative_to(root).as_posix(), node.name, lines))
    return found


def test_long_functions_are_found(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(100))
    (tmp_path / "m.py").write_text(f"def short():\n    return 1\n\n\ndef long():\n{body}\n    return x0\n")
    assert long_functions(tmp_path, MAX_LINES) == [("m.py", "long", 102)]


def test_no_function_in_src_is_over_100_lines() -> None:
    over = long_functions(SRC, MAX_LINES)
    assert not over, "functions over 100 lines: " + ", ".join(f"{p}:{n} ({k} lines)" for p, n, k in over)
