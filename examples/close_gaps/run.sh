#!/usr/bin/env bash
# Score a few consumer-health QA rows, look at coverage, filter (dry run), synthesize rows for the gaps, card.
# Uses ../shared/data/external/medical_qa_medquad.jsonl in place. The embedded model judges and writes near chance:
# this shows the workflow, not a diagnosis.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${GOALCOVER_EXTERNAL_DATA:-../shared/data/external}/medical_qa_medquad.jsonl
OUT=${1:-close_gaps_out}
[ -f "$DATA" ] || { echo "no $DATA: set GOALCOVER_EXTERNAL_DATA"; exit 0; }
# The template cuts long answers (up to 9,671 characters) to keep CPU scoring affordable.
goalcover score --data "$DATA" --spec examples/close_gaps/goal.yaml --mode logprobs --explain none --limit 6 \
    --template $'QUESTION: {{ question }}\n\nANSWER: {{ answer | truncate(700) }}' \
    -o "$OUT/run" --overwrite
goalcover report "$OUT/run"
goalcover filter "$OUT/run" --require any --dry-run
goalcover filter "$OUT/run" --require any -o "$OUT/filtered" --overwrite || echo "(no row passes: nothing written)"
goalcover synthesize "$OUT/run" --subgoals ${SUBGOALS:-advises_doctor} --per-subgoal ${N:-3} --max-chars 300 -o "$OUT/synth" --overwrite
goalcover card "$OUT/synth"
