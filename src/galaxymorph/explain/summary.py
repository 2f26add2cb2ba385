"""explain.json: one entry per method (and per answer of a tree model), kept across runs of explain."""

from __future__ import annotations

from ..rundir import RunFolder

EXPLAIN_FORMAT = "galaxymorph-explain/1"


def read_summary(files: RunFolder) -> dict:
    """explain.json so far (other methods' entries are kept), or a fresh one."""
    summary = files.read_explain()
    if isinstance(summary, dict) and summary.get("format") == EXPLAIN_FORMAT \
            and isinstance(summary.get("methods"), dict):
        return summary
    return {"format": EXPLAIN_FORMAT, "latest": None, "methods": {}}


def record_entry(files: RunFolder, key: str, entry: dict) -> None:
    """Add (or replace) one method's or answer's entry in explain.json and mark it the latest."""
    summary = read_summary(files)
    summary["latest"] = key
    summary["methods"][key] = entry
    files.write_explain(summary)
