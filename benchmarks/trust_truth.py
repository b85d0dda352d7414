"""A truth set for judge trust: real code rows whose truth, per subgoal, a program decides exactly.

The rows come from HumanEval (``../shared/data/external/code_generation.jsonl``, MIT; read at run time, never
copied). Each of its 164 tasks gives two rows: the reference solution (``prompt + canonical_solution``: signature,
docstring and body) and the task's test code (its ``check`` function), 328 rows in all, in file order. A row is
``{"id": ..., "text": code}`` (``id``: the task id with ``:a`` for the solution, ``:b`` for the tests): the
scorer renders only ``text``, and nothing in it names a property.

The subgoals (``trust_subgoals.yaml``, a goal spec like any other) are properties of the code that Python's own
parsers decide, so the truth has no labelling error: type hints on a signature (``ast``), a doctest line in a
docstring (``ast`` + the ``>>>`` prompt at a line start, doctest's own rule), a comment (``tokenize``: a ``#`` in a
string is no comment), a function docstring (``ast``), a while loop (``ast``) and a comparison operator (``ast``:
the ``in`` of a for loop is no comparison). Their true coverage spans about 5% to 86%.

Usage:
    python benchmarks/trust_truth.py [--n-rows N] [--seed 0]   # prints one JSON line: rows and true coverage
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import random
import re
import sys
import tokenize
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from judge_pairs import data_dir  # noqa: E402

SPEC_FILE = Path(__file__).resolve().parent / "trust_subgoals.yaml"
DATA_FILE = "code_generation.jsonl"
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _functions(tree: ast.AST) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, _DEFS)]


def _has(code: str, types) -> bool:
    return any(isinstance(n, types) for n in ast.walk(ast.parse(code)))


def type_hints(code: str) -> bool:
    """A function parameter or return value is annotated (``x: int = 0`` inside a body is not a signature)."""
    for f in _functions(ast.parse(code)):
        a = f.args
        params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *([a.vararg] if a.vararg else []),
                  *([a.kwarg] if a.kwarg else [])]
        if f.returns is not None or any(p.annotation is not None for p in params):
            return True
    return False


def doctest_example(code: str) -> bool:
    """A docstring (module, class or function) has a line that starts with ``>>>``, as doctest finds examples."""
    tree = ast.parse(code)
    owners = [tree] + [n for n in ast.walk(tree) if isinstance(n, (*_DEFS, ast.ClassDef))]
    return any(re.search(r"^[ \t]*>>>", ast.get_docstring(n, clean=False) or "", re.M) for n in owners)


def comment(code: str) -> bool:
    """A ``#`` comment token (a ``#`` inside a string or docstring is part of the string)."""
    return any(t.type == tokenize.COMMENT for t in tokenize.generate_tokens(io.StringIO(code).readline))


def docstring(code: str) -> bool:
    """A function whose first statement is a string literal."""
    return any(ast.get_docstring(f, clean=False) is not None for f in _functions(ast.parse(code)))


def while_loop(code: str) -> bool:
    return _has(code, ast.While)


def compares_values(code: str) -> bool:
    """A comparison operator anywhere (``for x in xs`` has none: its ``in`` is part of the loop)."""
    return _has(code, ast.Compare)


DECIDERS: dict[str, Callable[[str], bool]] = {f.__name__: f for f in (
    type_hints, doctest_example, comment, docstring, while_loop, compares_values)}


def load_rows() -> list[dict]:
    """Every row, in file order: each HumanEval task's solution, then its tests."""
    path = data_dir() / DATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: truth data not found (set GOALCOVER_EXTERNAL_DATA)")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            task = json.loads(line)
            try:
                rows.append({"id": f"{task['task_id']}:a", "text": task["prompt"] + task["canonical_solution"]})
                rows.append({"id": f"{task['task_id']}:b", "text": task["test"]})
            except KeyError as err:
                raise ValueError(f"{path}, line {n}: field {err} is missing") from None
    return rows


def load_spec():
    """The truth set's goal spec; its subgoal ids must be exactly those :data:`DECIDERS` decides."""
    from goalcover_hf.spec import GoalSpec

    spec = GoalSpec.load(SPEC_FILE)
    ids = [s.id for s in spec.subgoals]
    if sorted(ids) != sorted(DECIDERS):
        raise ValueError(f"{SPEC_FILE}: subgoal ids {ids} differ from the deciders {sorted(DECIDERS)}")
    return spec


def decide(rows: list[dict], spec) -> dict[str, list[int]]:
    """``{subgoal_id: [0/1 per row]}``; a row whose code does not parse is an error naming it, never a guess."""
    truth: dict[str, list[int]] = {s.id: [] for s in spec.subgoals}
    for row in rows:
        for sid, values in truth.items():
            try:
                values.append(int(DECIDERS[sid](row["text"])))
            except (SyntaxError, tokenize.TokenError) as err:
                raise ValueError(f"row {row['id']}: the code does not parse ({err})") from None
    return truth


def load_truth(n_rows: int | None = None, seed: int = 0) -> tuple[list[dict], object, dict[str, list[int]]]:
    """The truth set: ``(rows, spec, truth)``.

    Args:
        n_rows: how many rows (default None: all 328); a seeded sample otherwise, kept in file order.
        seed: the sample's seed.

    Returns:
        rows: ``[{"id", "text"}]``, the text being what the scorer renders (the ``text`` layout).
        spec: the :class:`~goalcover_hf.spec.GoalSpec` of ``trust_subgoals.yaml``.
        truth: ``{subgoal_id: [0 or 1 per row]}``, decided exactly by :data:`DECIDERS`.

    Example:
        >>> rows, spec, truth = load_truth()
        >>> sum(truth["while_loop"]) / len(rows)
    """
    rows = load_rows()
    if n_rows is not None:
        if not 1 <= n_rows <= len(rows):
            raise ValueError(f"n_rows must be within 1..{len(rows)} (the rows there are), got {n_rows}")
        keep = sorted(random.Random(seed).sample(range(len(rows)), n_rows))
        rows = [rows[k] for k in keep]
    spec = load_spec()
    return rows, spec, decide(rows, spec)


def coverage(truth: dict[str, list[int]]) -> dict[str, dict]:
    """True coverage per subgoal: positives, rows and their fraction."""
    return {sid: {"positives": sum(v), "rows": len(v), "coverage": round(sum(v) / len(v), 3) if v else None}
            for sid, v in truth.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the trust truth set's rows and true coverage (one JSON line).")
    parser.add_argument("--n-rows", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows, _, truth = load_truth(args.n_rows, args.seed)
    print(json.dumps({"rows": len(rows), "seed": args.seed, "coverage": coverage(truth)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
