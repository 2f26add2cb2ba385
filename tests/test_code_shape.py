"""The shape of the code: every function in src/galaxymorph is short enough to read in one sitting,
and an import inside a function says why it is there (``# lazy: ...``)."""

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


def _lazy_comment(line: str) -> bool:
    return "#" in line and "lazy" in line.split("#", 1)[1].lower()


def _function_imports(tree: ast.AST) -> list[ast.stmt]:
    """The import statements inside a function or method (nested functions included)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return sorted(set(found), key=lambda n: n.lineno)


def unexplained_imports(root: Path) -> list[str]:
    """'path:line import' for each import inside a function under ``root`` without a comment saying
    "lazy" on its own line(s) or the line above (a comment line, or the import before it in the same
    block, which is then explained in turn)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        explained: set[int] = set()
        for node in _function_imports(ast.parse("\n".join(lines), filename=str(path))):
            above = node.lineno - 1
            if (any(_lazy_comment(lines[i - 1]) for i in range(node.lineno, node.end_lineno + 1))
                    or (above >= 1 and lines[above - 1].lstrip().startswith("#") and _lazy_comment(lines[above - 1]))
                    or above in explained):
                explained.add(node.end_lineno)
            else:
                found.append(f"{path.relative_to(root)}:{node.lineno} {lines[node.lineno - 1].strip()}")
    return found


def test_every_import_inside_a_function_says_why_it_is_lazy():
    """Imports belong at the top of the module; one inside a function keeps something light
    (``import galaxymorph`` and ``--help`` free of torch, a heavy package off a common path) and
    says so in a ``# lazy: ...`` comment."""
    root = SRC if SRC.is_dir() else Path(galaxymorph.__file__).parent
    assert unexplained_imports(root) == []


def test_the_check_finds_an_unexplained_import(tmp_path):
    (tmp_path / "m.py").write_text(
        "import os\n\n\n"
        "def explained():\n    import json  # lazy: a reason\n    import csv\n\n"
        "    # lazy: the reason for the block below\n    import re\n    import io\n\n"
        "def unexplained():\n    import json  # a comment, but no reason\n\n"
        "def after_code():\n    x = 1  # lazy: not an import\n    import glob\n"
        "    return x, glob\n",
        encoding="utf-8")
    assert unexplained_imports(tmp_path) == ["m.py:13 import json  # a comment, but no reason",
                                             "m.py:17 import glob"]
