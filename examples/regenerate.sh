#!/usr/bin/env bash
# Rebuild every committed example output from scratch, so none goes stale: nothing under examples/*/card is edited
# by hand. Each step prints its wall time; docs/benchmarks.md lists what they took on a 2-core CPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
for step in examples/medquad/run.sh examples/showcase/run.sh; do
  start=$(date +%s)
  bash "$step"
  echo "$step: $(( $(date +%s) - start )) s"
done
