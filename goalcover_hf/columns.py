"""The annotated dataset's schema: the one place every stage reads column names, types and the threshold from.

Each (sample, subgoal) pair adds four columns, ``gc_<id>_score`` (int8, 1..5), ``gc_<id>_expected`` (float32),
``gc_<id>_explanation`` and ``gc_<id>_error`` (strings); each row adds ``gc_truncated_tokens`` (int32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .spec import GoalSpec

DEFAULT_THRESHOLD = 4  # a sample supports a subgoal when it scores at least this
COLUMN_PREFIX = "gc_"
TRUNCATED_COLUMN = "gc_truncated_tokens"  # per row: tokens cut from the middle to fit the judge's context (0: none)
# field of a Judgement -> (datasets dtype, pyarrow type name); one table for Features and arrow batches alike
FIELD_TYPES = {"score": "int8", "expected": "float32", "explanation": "string", "error": "string"}
TRUNCATED_TYPE = "int32"


@dataclass
class Judgement:
    """One (sample, subgoal) result. ``score`` is None exactly when ``error`` is set.

    Args:
        score: the integer score, 1..5.
        expected: the expected value over the score digits (logprobs mode), or the score itself.
        explanation: a short reason, where one was asked for.
        error: why the pair has no score.
    """

    score: int | None = None
    expected: float | None = None
    explanation: str | None = None
    error: str | None = None


def score_columns(subgoal_id: str) -> dict[str, str]:
    """Column name of each :class:`Judgement` field for one subgoal.

    Example:
        >>> score_columns("states_dose")["score"]
        'gc_states_dose_score'
    """
    base = f"{COLUMN_PREFIX}{subgoal_id}"
    return {field: f"{base}_{field}" for field in FIELD_TYPES}


def output_features(spec: "GoalSpec"):
    """The ``datasets.Features`` of the columns a scorer adds (explicit, so the Hub viewer types them right)."""
    from datasets import Features, Value

    feats = {}
    for sub in spec.subgoals:
        for field, col in score_columns(sub.id).items():
            feats[col] = Value(FIELD_TYPES[field])
    feats[TRUNCATED_COLUMN] = Value(TRUNCATED_TYPE)
    return Features(feats)


def arrow_type(name: str):
    """The pyarrow type of a dtype name of :data:`FIELD_TYPES`."""
    import pyarrow as pa

    return getattr(pa, name)()
