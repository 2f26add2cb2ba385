"""Decision-tree models: one output per answer of a Galaxy Zoo tree, learned from vote counts.

A tree model is any registry network with one output per answer (28 for ``gz2``). Each output
becomes a Dirichlet concentration ``1 + 99 * sigmoid(logit)`` (as Zoobot, Walmsley et al. 2022);
the concentrations of one question's answers describe a distribution over that question's vote
fractions, whose mean is the expected vote fraction ``concentration / sum over the question``.

The loss is the Dirichlet-multinomial negative log-likelihood of the observed vote counts,
summed over the questions of the tree; a question nobody was asked (zero votes) adds nothing.
See docs/votes.md.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from ..data.tree import DecisionTree, load_tree

TREE = "gz2"  # the decision tree that --targets tree trains on
MIN_CONCENTRATION, MAX_CONCENTRATION = 1.0, 100.0


@lru_cache(maxsize=None)
def _question_index(tree: DecisionTree) -> tuple[int, ...]:
    return tuple(q for q, s in enumerate(tree.slices) for _ in range(s.stop - s.start))


def question_of_answer(tree: DecisionTree) -> np.ndarray:
    """For every answer position, the position of its question (n_answers,)."""
    return np.asarray(_question_index(tree), dtype=np.int64)


def concentrations(logits: torch.Tensor) -> torch.Tensor:
    """Dirichlet concentrations (N, n_answers) in [1, 100] from the network's logits, in fp32."""
    return MIN_CONCENTRATION + (MAX_CONCENTRATION - MIN_CONCENTRATION) * torch.sigmoid(logits.float())


def _per_question(values: torch.Tensor, tree: DecisionTree) -> torch.Tensor:
    """Sum of (N, n_answers) values over each question's answers: (N, n_questions)."""
    index = torch.as_tensor(question_of_answer(tree), device=values.device)
    out = torch.zeros(values.shape[0], len(tree.questions), dtype=values.dtype, device=values.device)
    return out.index_add_(1, index, values)


def expected_fractions(conc: torch.Tensor | np.ndarray, tree: DecisionTree | str = TREE):
    """Expected vote fraction of every answer: its concentration over its question's total.
    Takes and returns a torch tensor or a numpy array (N, n_answers)."""
    tree = load_tree(tree) if isinstance(tree, str) else tree
    as_numpy = isinstance(conc, np.ndarray)
    c = torch.as_tensor(conc, dtype=torch.float64 if as_numpy else None)
    index = torch.as_tensor(question_of_answer(tree), device=c.device)
    out = c / _per_question(c, tree)[:, index]
    return out.numpy() if as_numpy else out


def vote_columns(tree: DecisionTree) -> list[str]:
    """The columns of predicted votes (predict's CSV, evaluate's tree_predictions.csv): every
    answer's expected fraction, then every answer's concentration."""
    return tree.fraction_columns() + [f"{a}_concentration" for a in tree.answers]


def vote_cells(fractions: np.ndarray, conc: np.ndarray) -> list[list[str]]:
    """Per image, the cells of :func:`vote_columns`: fractions to 6 decimals, concentrations to 4."""
    return [[f"{v:.6f}" for v in f] + [f"{v:.4f}" for v in c] for f, c in zip(fractions, conc)]


def dirichlet_multinomial_nll(counts: torch.Tensor, conc: torch.Tensor,
                              tree: DecisionTree | str = TREE) -> torch.Tensor:
    """Per image (N,): minus the log-likelihood of the vote ``counts`` (N, n_answers) under a
    Dirichlet-multinomial with concentrations ``conc``, summed over the tree's questions.

    Per question with n votes k_i and concentrations a_i (A = sum a_i):
    log p = lgamma(n+1) - sum lgamma(k_i+1) + lgamma(A) - lgamma(n+A) + sum [lgamma(k_i+a_i) - lgamma(a_i)].
    A question with no votes has log p = 0 exactly, and is masked to 0 as well.
    """
    tree = load_tree(tree) if isinstance(tree, str) else tree
    counts, conc = counts.to(conc.dtype), conc
    per_answer = torch.lgamma(counts + conc) - torch.lgamma(conc) - torch.lgamma(counts + 1)
    n, total = _per_question(counts, tree), _per_question(conc, tree)
    log_p = torch.lgamma(n + 1) + torch.lgamma(total) - torch.lgamma(n + total) + _per_question(per_answer, tree)
    return -(log_p * (n > 0)).sum(1)


def tree_loss_and_correct(logits: torch.Tensor, counts: torch.Tensor,
                          tree: DecisionTree | str = TREE) -> tuple[torch.Tensor, torch.Tensor]:
    """The training step's per-image losses and a number "right" for the history's accuracy:
    the images whose most likely answer to the first question is the volunteers' majority
    answer (images without votes on it count as wrong)."""
    tree = load_tree(tree) if isinstance(tree, str) else tree
    conc = concentrations(logits)
    first = tree.slices[0]
    c0 = counts[:, first].float()
    right = (conc[:, first].argmax(1) == c0.argmax(1)) & (c0.sum(1) > 0)
    return dirichlet_multinomial_nll(counts.float(), conc, tree), right.sum()
