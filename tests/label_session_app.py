"""A labelling session over a small fixed run, in its own process: what tests drive through a pipe or a terminal.

    python tests/label_session_app.py RUN_DIR [PER_SUBGOAL]
"""

import sys
from pathlib import Path

from goalcover_hf.label_session import LabelSession
from goalcover_hf.labels import Labels
from goalcover_hf.spec import GoalSpec

ROWS = 12
SPEC = GoalSpec(
    goal="Answer medication questions",
    subgoals=[
        {"id": "states_dose", "name": "States a dose", "description": "The answer gives a dose with units.",
         "low": "No dose at all.", "mid": "A dose without units.", "high": "An exact dose with units."},
        {"id": "warns", "name": "Warns about side effects", "description": "Names a side effect or risk."},
    ],
)


def texts() -> list[str]:
    out = [f"Question {i}: how much should I take?\nAnswer {i}: take it as directed." for i in range(ROWS)]
    out[0] = "\n".join(f"long sample, line {k}" for k in range(1, 101))  # pages of 40 lines
    return out


def scores() -> dict[str, list[float]]:
    return {"states_dose": [1.0 + (i * 7 % 12) / 3 for i in range(ROWS)],
            "warns": [5.0 - (i * 5 % 12) / 3 for i in range(ROWS)]}


def main() -> None:
    run = Path(sys.argv[1])
    per_subgoal = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    LabelSession(texts(), SPEC, scores(), Labels.load(run), per_subgoal=per_subgoal, seed=0).run()


if __name__ == "__main__":
    main()
