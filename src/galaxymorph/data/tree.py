"""A Galaxy Zoo decision tree as data: questions, their answers, and the answer that leads to each.

The tree lives in the package as a JSON table (``data/trees/<name>.json``), so another tree
(Galaxy Zoo DECaLS, say) is another table, not new code. Answer names are the catalogue's column
stems: a data file imported with ``data import --catalog`` holds ``catalog/<answer>_count`` (and
``_fraction``) for every answer.

    tree = load_tree("gz2")
    tree.answers            # every answer, questions in order
    tree.slices             # per question, its answers' positions in ``answers``
    counts = tree.read_counts(data, indices)   # (n, n_answers) vote counts, NaN -> 0
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Sequence

import numpy as np

from ..errors import DataError

TREES = ("gz2",)
COUNT_SUFFIX = "_count"
FRACTION_SUFFIX = "_fraction"


@dataclass(frozen=True)
class Question:
    name: str
    answers: tuple[str, ...]
    asked_after: str | None  # the answer that leads to this question; None = asked of every galaxy


@dataclass(frozen=True)
class DecisionTree:
    name: str
    questions: tuple[Question, ...]

    @property
    def answers(self) -> list[str]:
        return [a for q in self.questions for a in q.answers]

    @property
    def slices(self) -> list[slice]:
        out, start = [], 0
        for q in self.questions:
            out.append(slice(start, start + len(q.answers)))
            start += len(q.answers)
        return out

    def question_of(self, answer: str) -> Question:
        for q in self.questions:
            if answer in q.answers:
                return q
        raise DataError(f"{answer!r} is not an answer of the {self.name} tree; "
                        f"answers: {', '.join(self.answers)}")

    def count_columns(self) -> list[str]:
        return [a + COUNT_SUFFIX for a in self.answers]

    def fraction_columns(self) -> list[str]:
        return [a + FRACTION_SUFFIX for a in self.answers]

    def missing_columns(self, columns: Sequence[str]) -> list[str]:
        """The count columns of this tree that ``columns`` lacks."""
        have = set(columns)
        return [c for c in self.count_columns() if c not in have]

    def voted(self, data) -> np.ndarray:
        """Indices of the images of an open file with at least one vote on this tree: the images a
        decision-tree model trains and is scored on."""
        return with_votes(self.read_counts(data))

    def read_counts(self, data, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Vote counts (n, n_answers) float32 from an open Galaxy10-layout file's ``catalog/``;
        a missing value (NaN) counts as no vote."""
        missing = self.missing_columns(data.catalog_columns())
        if missing:
            raise DataError(f"{data.path.name} lacks {len(missing)} vote-count column(s) of the {self.name} "
                            f"tree under 'catalog/' (first: {missing[0]}); import the images with "
                            "--catalog pointing at a catalogue of vote counts")
        counts = np.stack([data.catalog(c, indices) for c in self.count_columns()], axis=1).astype(np.float32)
        counts = np.nan_to_num(counts, nan=0.0)
        if (counts < 0).any():
            raise DataError(f"{data.path.name}: negative vote counts in the catalogue")
        return counts


def has_votes(counts: np.ndarray) -> np.ndarray:
    """Per row of vote ``counts`` (n, n_answers; NaN = no value): whether it holds at least one vote."""
    return np.nansum(np.asarray(counts, dtype=np.float64), axis=1) > 0


def with_votes(counts: np.ndarray) -> np.ndarray:
    """Indices of the rows of vote ``counts`` with at least one vote."""
    return np.flatnonzero(has_votes(counts))


@lru_cache(maxsize=None)
def load_tree(name: str = "gz2") -> DecisionTree:
    """The decision tree ``name`` shipped with the package (read once per process; it is frozen)."""
    if name not in TREES:
        raise DataError(f"unknown decision tree {name!r}; known: {', '.join(TREES)}")
    text = resources.files(__package__).joinpath("trees", f"{name}.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    questions = tuple(Question(q["name"], tuple(q["answers"]), q.get("asked_after")) for q in raw["questions"])
    answers = [a for q in questions for a in q.answers]
    if len(set(answers)) != len(answers):
        raise DataError(f"tree {name!r} repeats an answer")
    for q in questions:
        if q.asked_after is not None and q.asked_after not in answers:
            raise DataError(f"tree {name!r}: question {q.name} follows unknown answer {q.asked_after!r}")
    return DecisionTree(raw.get("name", name), questions)
