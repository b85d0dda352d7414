"""Second pass over the human labels: compare them with what a program can see in the code.

The program only checks part of each rule (see LABELLING.md); it is a check on the labeller, not the truth. Every
disagreement it prints was re-read by hand and the decision is recorded in LABELLING.md.

Usage:
    python examples/showcase/check_labels.py     # prints per-subgoal positives and every disagreement
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import tokenize
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Informal examples in HumanEval docstrings: "f(x) => y", "f(x) == y", "Input: ... Output:", "the output should be".
INFORMAL_EXAMPLE = re.compile(r"(\w+\(.*\)\s*(=>|==>|==|➞|=|returns|#\s*returns))|Input:|output should be|=> result")


def entry_function(source: str) -> ast.FunctionDef:
    """The function the row asks for: the last top-level ``def`` (earlier ones are given helpers)."""
    defs = [node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)]
    return defs[-1]


def fully_annotated(func: ast.FunctionDef) -> bool:
    params = func.args.posonlyargs + func.args.args + func.args.kwonlyargs
    return func.returns is not None and all(p.annotation is not None for p in params)


def has_example(func: ast.FunctionDef) -> tuple[bool, bool]:
    """(doctest ``>>>`` present, informal example present) in the docstring."""
    doc = ast.get_docstring(func) or ""
    return ">>>" in doc, bool(INFORMAL_EXAMPLE.search(doc))


def has_body_comment(source: str, func: ast.FunctionDef) -> bool:
    """A ``#`` comment token between the def line and the end of the function (docstrings are string tokens)."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return any(t.type == tokenize.COMMENT and func.lineno <= t.start[0] <= func.end_lineno for t in tokens)


def has_raise(func: ast.FunctionDef) -> bool:
    return any(isinstance(node, ast.Raise) for node in ast.walk(func))


def edge_case_hint(func: ast.FunctionDef) -> bool:
    """A crude sign of dedicated edge-case code: a test on len(), emptiness, 0/1, an order between two parameters, or a
    try/except, or abs() on the input. Only a prompt to re-read: it misses some cases and flags ordinary logic."""
    params = {a.arg for a in func.args.args}
    for node in ast.walk(func):
        if isinstance(node, ast.Try):
            return True
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "abs":
            return True
        test = getattr(node, "test", None)
        if test is None:
            continue
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return True
        if isinstance(test, ast.Name) and test.id not in params:
            return True  # "x if filtered else None": truthiness of a derived collection
        if isinstance(test, ast.Compare):
            operands = [test.left, *test.comparators]
            names = {o.id for o in operands if isinstance(o, ast.Name)}
            consts = [o.value for o in operands if isinstance(o, ast.Constant)]
            calls_len = any(isinstance(o, ast.Call) and getattr(o.func, "id", "") == "len" for o in operands)
            if (names & params) and (len(names & params) == 2 or any(c in (0, 1, "", ()) for c in consts)):
                return True
            if calls_len and any(isinstance(c, int) for c in consts):
                return True
    return False


def program_labels(row: dict) -> dict[str, int]:
    source = row["completion"]
    func = entry_function(source)
    doctest, informal = has_example(func)
    return {
        "shows_usage_example": int(doctest),  # informal examples are reported separately: re-read those rows
        "handles_edge_cases": int(edge_case_hint(func)),
        "explains_with_comments": int(has_body_comment(source, func)),
        "uses_type_hints": int(fully_annotated(func)),
        "raises_on_invalid_input": int(has_raise(func)),
        "_informal_example": int(informal),
    }


def main() -> None:
    rows = {json.loads(line)["id"]: json.loads(line) for line in (HERE / "data.jsonl").open(encoding="utf-8")}
    with (HERE / "labels.csv").open(encoding="utf-8", newline="") as f:
        labels = [(r["id"], r["subgoal"], int(r["label"])) for r in csv.DictReader(f)]
    seen = Counter((i, s) for i, s, _ in labels)
    subgoals = list(dict.fromkeys(s for _, s, _ in labels))
    assert set(i for i, _, _ in labels) == set(rows), "labels.csv and data.jsonl hold different ids"
    assert all(n == 1 for n in seen.values()) and len(seen) == len(rows) * len(subgoals), "a pair is missing or doubled"
    program = {i: program_labels(row) for i, row in rows.items()}
    positives = Counter(s for _, s, y in labels if y)
    for sub in subgoals:
        print(f"{sub}: {positives[sub]}/{len(rows)} positive (program: {sum(p[sub] for p in program.values())})")
    print("\ndisagreements (label vs program):")
    for i, sub, y in labels:
        p = program[i][sub]
        if p != y:
            extra = " (informal example found)" if sub == "shows_usage_example" and program[i]["_informal_example"] else ""
            print(f"  {i:14} {sub:24} label={y} program={p}{extra}")


if __name__ == "__main__":
    main()
