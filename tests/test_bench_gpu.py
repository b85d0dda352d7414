"""benchmarks/bench_gpu.py stays runnable: its --small shape on the CPU prints the JSON line a GPU run would (its
figures are checked for shape and consistency, never for speed)."""

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIELDS = {"bench", "shape", "parameters", "device", "dtype", "engine", "tokenizer", "data", "rows", "subgoals",
          "pairs", "batch_size", "build_s", "load_s", "seconds", "seconds_k1", "pairs_per_s", "prompt_tokens",
          "prompt_tokens_per_s", "computed_tokens", "computed_tokens_per_s", "plain_forward", "plain_tokens_per_s",
          "fraction_of_plain", "k_over_1_time", "targets", "peak_gpu_memory_gib"}


def test_small_bench_gpu_prints_one_json_line_with_every_field(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "GOALCOVER_THREADS": "1",
           "GOALCOVER_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--small", "--device", "cpu",
                             "--rows", "3", "--subgoals", "2", "--batch-size", "2"],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert set(out) == FIELDS
    assert (out["bench"], out["device"], out["dtype"], out["rows"], out["subgoals"], out["pairs"]) == (
        "gpu", "cpu", "float32", 3, 2, 6)
    assert out["engine"]["device"] == "cpu" and out["engine"]["attn_implementation"] == "sdpa"
    assert out["peak_gpu_memory_gib"] is None and out["targets"]["asserted"] is False
    # Consistent figures: sharing reads fewer tokens than the chats hold, and each rate is its count over the time.
    assert 0 < out["computed_tokens"] < out["prompt_tokens"]
    close = partial(pytest.approx, rel=0.01, abs=2e-3)  # the times are printed rounded
    assert out["pairs_per_s"] == close(out["pairs"] / out["seconds"])
    assert out["fraction_of_plain"] == close(out["computed_tokens_per_s"] / out["plain_tokens_per_s"])
    assert out["k_over_1_time"] == close(out["seconds"] / out["seconds_k1"])
    assert 0 < out["parameters"] < 10**8  # the small shape, not the 7B one
