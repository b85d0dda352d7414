"""Rebuild data.jsonl: 40 HumanEval rows (MIT, see SOURCE.md) framed as prompt/completion pairs.

Usage:
    python examples/showcase/make_rows.py SOURCE_JSONL [--out data.jsonl] [--overwrite]

SOURCE_JSONL is HumanEval as JSON Lines with the upstream fields (``task_id`` or ``id``, ``prompt``,
``canonical_solution``), in the upstream order.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from goalcover_hf.errors import GoalcoverError
from goalcover_hf.files import atomic_write_text, refuse_overwrite

SEED, N_ROWS = 0, 40
INSTRUCTION = "Complete this Python function:\n"


def showcase_rows(source: list[dict]) -> list[dict]:
    """The seeded draw (``random.Random(0).sample`` over the ids, kept in file order), framed for goalcover."""
    ids = [row.get("id", row.get("task_id")) for row in source]
    chosen = set(random.Random(SEED).sample(ids, N_ROWS))
    return [
        {"id": row_id, "prompt": INSTRUCTION + row["prompt"], "completion": row["prompt"] + row["canonical_solution"]}
        for row_id, row in zip(ids, source)
        if row_id in chosen
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data.jsonl")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    try:
        refuse_overwrite(args.out, args.overwrite)
    except GoalcoverError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    with args.source.open(encoding="utf-8") as f:
        source = [json.loads(line) for line in f if line.strip()]
    rows = showcase_rows(source)
    atomic_write_text(args.out, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    print(f"{args.out}: {len(rows)} rows")


if __name__ == "__main__":
    main()
