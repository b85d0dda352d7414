"""Explanations on a budget: explain at most M low-scoring pairs per subgoal, not every one.

Gap analysis reads the explanations of low-scoring pairs, but a few dozen per subgoal name its themes; in a real
dataset most samples do not show most subgoals, so explaining every low pair costs more as the dataset grows. With
``explain="sample"`` (the default) the map computes scores only, and :func:`explain_sample` then explains a seeded
draw of at most ``per_subgoal`` low-scoring pairs per subgoal, spread over the low scores (each score below the
threshold gets its share before any gets more). Scores are read back from the pair cache, so only the explanations
cost tokens; they are stored there too.

Example:
    >>> scorer = Scorer(spec)                                  # explain="sample"
    >>> annotated = ds.map(scorer, batched=True, with_indices=True, features=scorer.features(ds.features))
    >>> annotated = explain_sample(annotated, scorer, per_subgoal=64, seed=0)
"""

from __future__ import annotations

import random
from typing import Sequence

from .columns import score_columns
from .formats import RowRenderer

DEFAULT_PER_SUBGOAL = 64
EXPLAIN_ROWS = 256  # rows rendered and judged at a time (the pair cache stores every few samples within it)


def pick_low_pairs(scores: Sequence[int | None], explained: Sequence[bool], threshold: int, limit: int,
                   seed: int = 0) -> list[int]:
    """Rows to explain for one subgoal: at most ``limit`` rows scoring below ``threshold`` (the ones already explained
    count toward it), drawn with ``seed`` and spread over the score levels: round robin over 1, 2, ..., then again.

    Example:
        >>> pick_low_pairs([1, 1, 1, 2, 5], [False] * 5, threshold=4, limit=2)
        [1, 3]
    """
    budget = limit - sum(1 for s, e in zip(scores, explained) if e and s is not None and s < threshold)
    rng = random.Random(seed)
    levels = []
    for level in range(1, threshold):
        rows = [k for k, (s, e) in enumerate(zip(scores, explained)) if s == level and not e]
        rng.shuffle(rows)
        levels.append(rows)
    chosen = []
    while budget > len(chosen) and any(levels):
        for rows in levels:
            if rows and budget > len(chosen):
                chosen.append(rows.pop())
    return sorted(chosen)


def explain_sample(dataset, scorer, per_subgoal: int = DEFAULT_PER_SUBGOAL, seed: int = 0):
    """Add explanations to at most ``per_subgoal`` low-scoring pairs per subgoal of an annotated dataset.

    Args:
        dataset: the ``datasets.Dataset`` the scorer annotated.
        scorer: the :class:`~goalcover_hf.scorer.Scorer` that annotated it (its pair cache holds the scores).
        per_subgoal: the most explanations a subgoal gets (default 64).
        seed: the draw's seed.

    Returns:
        The dataset with the chosen pairs' ``gc_<id>_explanation`` filled in.
    """
    renderer = RowRenderer(columns=dataset.column_names, template=scorer.config.template)
    subgoals = scorer.spec.subgoals
    columns = {sub.id: score_columns(sub.id) for sub in subgoals}
    new = {sub.id: list(dataset[columns[sub.id]["explanation"]]) for sub in subgoals}
    chosen: dict[int, list[str]] = {}  # row -> the subgoals it explains: one reading of the row serves them all
    for sub in subgoals:
        for k in pick_low_pairs(dataset[columns[sub.id]["score"]], [e is not None for e in new[sub.id]],
                                scorer.config.threshold, per_subgoal, seed):
            chosen.setdefault(k, []).append(sub.id)
    rows = sorted(chosen)
    for start in range(0, len(rows), EXPLAIN_ROWS):
        part = rows[start : start + EXPLAIN_ROWS]
        texts = [renderer.render(dataset[k]) for k in part]
        judged = scorer.judge_texts(texts, subgoals, explain=[(n, sid) for n, k in enumerate(part) for sid in chosen[k]])
        for k, row in zip(part, judged):
            for sub, judgement in zip(subgoals, row):
                if sub.id in chosen[k]:
                    new[sub.id][k] = judgement.explanation
    features = dataset.features
    for sid, values in new.items():
        name = columns[sid]["explanation"]
        dataset = dataset.remove_columns(name).add_column(name, values, feature=features[name])
    return dataset.select_columns(list(features))
