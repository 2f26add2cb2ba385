import numpy as np
import pytest

from galaxymorph.data.tree import load_tree
from galaxymorph.errors import DataError


def test_gz2_tree_has_28_answers_in_nine_questions():
    tree = load_tree("gz2")
    assert len(tree.questions) == 9
    assert len(tree.answers) == 28
    assert [s.stop - s.start for s in tree.slices] == [len(q.answers) for q in tree.questions]
    assert tree.question_of("t03_bar_a06_bar").asked_after == "t02_edgeon_a05_no"
    assert tree.count_columns()[0] == "t01_smooth_or_features_a01_smooth_count"


def test_unknown_tree_and_answer_are_one_line_errors():
    with pytest.raises(DataError, match="unknown decision tree"):
        load_tree("gz9")
    with pytest.raises(DataError, match="not an answer"):
        load_tree().question_of("t03_bar_a99")


class _Data:
    path = type("P", (), {"name": "x.h5"})()

    def __init__(self, cols):
        self.cols = cols

    def catalog_columns(self):
        return list(self.cols)

    def catalog(self, name, indices=None):
        v = self.cols[name]
        return v if indices is None else v[np.asarray(indices)]


def test_read_counts_turns_missing_votes_into_zero_and_names_missing_columns():
    tree = load_tree()
    cols = {c: np.array([1.0, np.nan], dtype=np.float32) for c in tree.count_columns()}
    counts = tree.read_counts(_Data(cols))
    assert counts.shape == (2, 28) and counts[1].sum() == 0 and counts[0].sum() == 28
    del cols[tree.count_columns()[5]]
    with pytest.raises(DataError, match="lacks 1 vote-count"):
        tree.read_counts(_Data(cols))


def test_with_votes_keeps_the_rows_with_any_vote():
    from galaxymorph.data.tree import with_votes

    counts = np.array([[0, 0, 0], [0, 1, 0], [2, 0, 3], [0, 0, 0]], dtype=np.float32)
    assert with_votes(counts).tolist() == [1, 2]
