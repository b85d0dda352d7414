"""goalcover_hf: which capabilities does your fine-tuning data support, before you pay for the run?"""

from .version import __version__

from .card import read_card, write_card
from .coverage import CoverageReport, compute_coverage, coverage_from_scores
from .decompose import decompose  # light: the engine loads only when a proposal is asked for
from .errors import GoalcoverError
from .filtering import filter
from .gaps import find_gaps
from .label_import import import_labels
from .labels import Labels
from .models import resolve_model
from .scorer import Scorer, score
from .spec import GoalSpec, SpecError, Subgoal


def metric_path() -> str:
    """Path of the ``evaluate`` metric script.

    Returns:
        ``str``: the script's path.

    Example:
        >>> evaluate.load(goalcover_hf.metric_path())
    """
    from importlib import resources

    return str(resources.files("goalcover_hf.evaluate_metric").joinpath("goalcover.py"))


__all__ = [
    "GoalSpec", "Subgoal", "SpecError", "Scorer", "score", "compute_coverage", "coverage_from_scores",
    "CoverageReport", "find_gaps", "write_card", "read_card", "resolve_model", "metric_path", "decompose",
    "filter", "synthesize", "validate", "GoalcoverError", "Labels", "import_labels",
]


def __getattr__(name):
    if name == "synthesize":
        from .synthesize import synthesize

        return synthesize
    if name == "validate":
        from .validate import validate

        return validate
    raise AttributeError(name)
