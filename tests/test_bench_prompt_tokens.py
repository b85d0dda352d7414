"""benchmarks/bench_prompt_tokens.py stays runnable and its token floor is the arithmetic of its own counts."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_prompt_tokens_counts_add_up(tmp_path, tiny_model):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "GOALCOVER_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_prompt_tokens.py"), "--model", tiny_model,
                             "--rows", "3", "--subgoals", "3"], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    [line] = result.stdout.strip().splitlines()
    out = json.loads(line)
    assert out["rows"] == 3 and out["subgoals"] == 3 and out["instruction_tokens"] > 0
    sample, suffixes = out["mean_sample_tokens"], out["mean_suffix_tokens_per_subgoal"]
    assert len(suffixes) == 3 and min(suffixes) > 0 and sample > 0
    # the ratio is (sample + every suffix) / (sample + the first suffix), from the same counts (means over 3 rows)
    assert abs(out["token_ratio_k_over_1"] - (sample + sum(suffixes)) / (sample + suffixes[0])) < 0.01
    assert 1 < out["token_ratio_k_over_1"] < 3
