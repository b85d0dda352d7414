#!/usr/bin/env bash
# The README's main job: score the example medication Q&A data against its goal spec with the embedded model,
# check the judge against 96 human labels (calibrated coverage with intervals), find the gaps, print the coverage
# report, and write a dataset card section with its charts. Output goes to demo_out/.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-demo_out}
MODEL=${MODEL:-embedded}
start=$(date +%s)
goalcover score --data examples/medication_qa/data.jsonl --spec examples/medication_qa/goal.yaml \
  --model "$MODEL" -o "$OUT/run" --overwrite
goalcover label "$OUT/run" --import examples/medication_qa/labels.csv   # human labels -> $OUT/run/labels.jsonl
goalcover check "$OUT/run"     # the judge against the labels, and calibrated coverage
goalcover gaps "$OUT/run"      # themes of the low-score explanations, named by the judge -> $OUT/run/gaps.json
goalcover report "$OUT/run"
cp -n examples/medication_qa/README.md "$OUT/README.md" 2>/dev/null || true
goalcover card "$OUT/run" --readme "$OUT/README.md"
echo
echo "Card: $OUT/README.md (chart: $OUT/goalcover_coverage.png). Demo took $(( $(date +%s) - start )) s."
