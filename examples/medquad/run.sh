#!/usr/bin/env bash
# Score the first 12 MedQuAD rows (shared external data, never copied here) with the embedded judge, find the gaps
# and write the card into examples/medquad/card/. Answers are cut to 800 characters to keep CPU time down.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data/external/medical_qa_medquad.jsonl}
RUN=${RUN:-/tmp/goalcover_medquad_run}
goalcover score --data "$DATA" --spec examples/medquad/goal.yaml --limit 12 --batch-size 12 --mode logprobs \
  --template $'Question: {{ question }}\n\nAnswer: {{ answer | truncate(800) }}' -o "$RUN" --overwrite
goalcover gaps "$RUN"
mkdir -p examples/medquad/card
goalcover card "$RUN" --readme examples/medquad/card/README.md
cp "$RUN/gaps.json" examples/medquad/card/gaps.json
