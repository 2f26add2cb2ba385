"""The shape of the code: every function in src/galaxymorph is short enough to read in one sitting."""

import ast
from pathlib import Path

import galaxymorph

MAX_LINES = 80
SRC = Path(__file__).resolve().parent.parent / "src" / "galaxymorph"


def long_functions(root: Path, limit: int) -> list[str]:
    """'path:line name (n lines)' for each function or method under ``root`` longer than ``limit`` lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({n} lines)")
    return found


def test_no_function_is_longer_than_80_lines():
    root = SRC if SRC.is_dir() else Path(galaxymorph.__file__).parent
    assert list(root.rglob("*.py")), f"no source files under {root}"
    assert long_functions(root, MAX_LINES) == []


def test_the_check_finds_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "long.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}\n", encoding="utf-8")
    assert long_functions(tmp_path, MAX_LINES) == [f"long.py:5 long ({MAX_LINES + 1} lines)"]
