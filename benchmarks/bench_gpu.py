"""GPU scoring speed: the transformers engine's shared-prefix path against a plain batched forward on the same device.
Prints ONE JSON line.

    python benchmarks/bench_gpu.py --device cuda          # Qwen2.5-7B-Instruct's shape, bfloat16, on the GPU
    python benchmarks/bench_gpu.py --small --device cpu   # a tiny model of the same family: seconds, for CI

The judge is a randomly initialized model of a real architecture's shape (Qwen2.5-7B-Instruct's published
configuration, written below: no download; random weights compute exactly as fast as trained ones), saved to a
temporary folder and loaded through the transformers engine as any judge is. Its tokenizer is the embedded SmolLM2's
when the package is installed, else a small BPE trained here on the rows (ids above its vocabulary are never asked:
only speed is measured). Rows come from ``shared/data/external`` (MedQuAD and Alpaca rows, alternating) when that
folder is found, else ``examples/medication_qa/data.jsonl``; each is judged against K subgoals in logprobs mode.

Reported: pairs/s; prompt tokens/s (every chat's tokens, as if each were read whole); computed tokens/s (what the
model actually ran, each shared beginning once); ``fraction_of_plain``: computed tokens/s over a plain batched
forward's tokens/s on the same device (its ceiling); and ``k_over_1_time``, time(K subgoals) / time(1 subgoal) on
the same rows. Targets on a GPU (reported, not asserted): ``fraction_of_plain >= 0.6`` and ``k_over_1_time <= 2``.
Needs only torch, transformers and goalcover_hf.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Qwen2.5-7B-Instruct's config.json (the fields that set the compute; the rest are Qwen2Config's defaults).
QWEN25_7B = dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                 num_key_value_heads=4, vocab_size=152064, rope_theta=1e6, max_position_embeddings=32768,
                 rms_norm_eps=1e-6, hidden_act="silu", tie_word_embeddings=False)
SMALL = dict(QWEN25_7B, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2)
EXTERNAL_FILES = ("medical_qa_medquad.jsonl", "general_instructions.jsonl")
FALLBACK = ROOT / "examples" / "medication_qa" / "data.jsonl"
GOAL = "A helpful assistant for health and general questions"
SUBGOALS = [  # (id, description): eight distinct properties a judge is asked about
    ("answers_question", "The response directly answers what was asked."),
    ("factual_detail", "The response contains concrete facts, numbers or named entities."),
    ("plain_language", "The response is understandable by a layperson without jargon."),
    ("safety_advice", "The response warns about risks or says when to see a professional."),
    ("structured", "The response uses steps, lists or paragraphs that organize the content."),
    ("medical_content", "The sample is about a disease, a treatment or a test."),
    ("states_cause", "The response explains why something happens (causes or mechanisms)."),
    ("concise", "The response has no filler and no repetition."),
]
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def find_external() -> Path | None:
    for base in (ROOT / "shared", ROOT.parent / "shared", Path("/work/shared")):
        folder = base / "data" / "external"
        if all((folder / name).is_file() for name in EXTERNAL_FILES):
            return folder
    return None


def load_rows(n: int) -> tuple[list[str], str]:
    """``n`` rendered rows, alternating between the external files (or all from the fallback), and where from."""
    from goalcover_hf.formats import RowRenderer

    folder = find_external()
    files = [folder / name for name in EXTERNAL_FILES] if folder else [FALLBACK]
    streams = []
    for path in files:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        render = RowRenderer(columns=[c for c in rows[0] if c != "id"]).render
        streams.append([render({k: v for k, v in row.items() if k != "id"}) for row in rows])
    texts = [stream[i] for i in range(max(map(len, streams))) for stream in streams if i < len(stream)]
    if not texts:
        sys.exit(f"no rows in {', '.join(map(str, files))}")
    texts = (texts * (1 + n // len(texts)))[:n]  # the fallback file is short: rows repeat, prefixes do not carry over
    return texts, ", ".join(str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in files)


def tokenizer_for(texts: list[str]):
    """The embedded SmolLM2's tokenizer (read from its GGUF, no weights), else a BPE trained on ``texts``."""
    try:
        from transformers import AutoTokenizer

        from goalcover_hf.models import embedded_gguf_path, from_gguf

        [tok] = from_gguf(embedded_gguf_path(), AutoTokenizer)
        return tok, "SmolLM2-135M-Instruct (embedded)"
    except Exception as err:  # the embedded package or gguf missing: any tokenizer measures speed
        print(f"bench_gpu: no embedded tokenizer ({type(err).__name__}); training a BPE on the rows", file=sys.stderr)
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=8000, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = CHATML
    return tok, "byte-level BPE trained on the rows (8000)"


def build_judge(folder: Path, shape: dict, tokenizer, device: str, dtype: str) -> int:
    """A random model of ``shape`` saved in ``folder`` with ``tokenizer``; built on ``device`` (fast), then freed.
    Returns its parameter count."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    config = Qwen2Config(**dict(shape, vocab_size=max(shape["vocab_size"], len(tokenizer))),
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=None)
    torch.manual_seed(0)
    kind = getattr(torch, "bfloat16" if dtype == "auto" else dtype)  # as saved; the engine loads it in its own
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=kind)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder, max_shard_size="5GB")
    tokenizer.save_pretrained(folder)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return params


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_tokens_per_s(engine, texts: list[str], batch: int, width: int, repeats: int = 3) -> float:
    """Tokens/s of the best of ``repeats`` plain forwards of ``batch x width`` real tokens (no padding, no cache)."""
    import torch

    ids = engine.tokenizer("\n\n".join(texts), add_special_tokens=False)["input_ids"]
    ids = ids * (1 + batch * width // max(1, len(ids)))
    block = torch.tensor([ids[r * width:(r + 1) * width] for r in range(batch)], device=engine.device)
    best = float("inf")
    with torch.inference_mode():
        engine.model(input_ids=block[:1, :64], logits_to_keep=1)  # kernels chosen and warmed outside the timing
        for _ in range(repeats):
            sync(engine.device)
            start = time.perf_counter()
            engine.model(input_ids=block, logits_to_keep=1)
            sync(engine.device)
            best = min(best, time.perf_counter() - start)
    return block.numel() / best


def timed_scoring(scorer, engine, texts, subgoals) -> tuple[float, int]:
    """Wall seconds and tokens run to judge ``texts`` against ``subgoals``, from no kept sample (the instructions'
    state, shared by every judge call, stays)."""
    del engine._kept[1:]
    engine.tokens_read = 0
    sync(engine.device)
    start = time.perf_counter()
    judged = scorer.judge_texts(texts, subgoals)  # ends with the probabilities on the host: nothing left queued
    seconds = time.perf_counter() - start
    errors = [j.error for row in judged for j in row if j.error]
    if errors:
        sys.exit(f"bench_gpu: {len(errors)} pairs failed, e.g. {errors[0]}")
    return seconds, engine.tokens_read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (default), cuda, cuda:N, mps or cpu")
    parser.add_argument("--dtype", default="auto", help="auto (default: bfloat16 on a GPU), float32, bfloat16, float16")
    parser.add_argument("--small", action="store_true", help="a tiny model of the same family (seconds on a CPU)")
    parser.add_argument("--rows", type=int, help="samples judged (default 64, --small 4)")
    parser.add_argument("--subgoals", type=int, default=8, help=f"K, at most {len(SUBGOALS)} (default 8)")
    parser.add_argument("--batch-size", type=int, default=16, help="samples per engine call (default 16)")
    args = parser.parse_args()

    import torch

    from goalcover_hf.engines.devices import resolve_device
    from goalcover_hf.engines.transformers import TransformersEngine
    from goalcover_hf.scorer import Scorer
    from goalcover_hf.spec import GoalSpec

    k = max(1, min(args.subgoals, len(SUBGOALS)))
    texts, source = load_rows(args.rows or (4 if args.small else 64))
    spec = GoalSpec(goal=GOAL, subgoals=[{"id": i, "name": i.replace("_", " ").capitalize(), "description": d}
                                         for i, d in SUBGOALS[:k]])
    shape = SMALL if args.small else QWEN25_7B
    device = resolve_device(args.device)
    tokenizer, tokenizer_name = tokenizer_for(texts)
    with tempfile.TemporaryDirectory(prefix="goalcover-bench-gpu-") as tmp:
        start = time.perf_counter()
        params = build_judge(Path(tmp), shape, tokenizer, device, args.dtype)
        built = time.perf_counter() - start
        start = time.perf_counter()
        engine = TransformersEngine(tmp, device=device, dtype=args.dtype)
        loaded = time.perf_counter() - start
        scorer = Scorer(spec, engine=engine, mode="logprobs", explain="none", cache=False,
                        batch_size=args.batch_size)
        if engine.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(engine.device)
        scorer.judge_texts(texts[:2], spec.subgoals)  # warm-up: kernels, allocator, the instructions' state
        seconds, computed = timed_scoring(scorer, engine, texts, spec.subgoals)
        seconds_1, _ = timed_scoring(scorer, engine, texts, spec.subgoals[:1])
        prompt_tokens = sum(len(engine.tokenizer(engine.chat_text(scorer.chat(scorer.fit_samples([t])[0][0], s,
                                                                                "ask_digit")),
                                                 add_special_tokens=False)["input_ids"])
                            for t in texts for s in spec.subgoals)
        batch, width = (4, 128) if args.small else (16, 1024)
        plain = plain_tokens_per_s(engine, texts, batch, width)
        described = engine.describe()
        peak = torch.cuda.max_memory_allocated(engine.device) / 2**30 if engine.device.type == "cuda" else None
    pairs = len(texts) * k
    print(json.dumps({
        "bench": "gpu",
        "shape": "small (Qwen2 family)" if args.small else "Qwen2.5-7B-Instruct",
        "parameters": params,
        "device": described["device"],
        "dtype": described["dtype"],
        "engine": described,
        "tokenizer": tokenizer_name,
        "data": source,
        "rows": len(texts),
        "subgoals": k,
        "pairs": pairs,
        "batch_size": args.batch_size,
        "build_s": round(built, 2),
        "load_s": round(loaded, 2),
        "seconds": round(seconds, 4),
        "seconds_k1": round(seconds_1, 4),
        "pairs_per_s": round(pairs / seconds, 3),
        "prompt_tokens": prompt_tokens,
        "prompt_tokens_per_s": round(prompt_tokens / seconds, 1),
        "computed_tokens": computed,
        "computed_tokens_per_s": round(computed / seconds, 1),
        "plain_forward": {"batch": batch, "width": width},
        "plain_tokens_per_s": round(plain, 1),
        "fraction_of_plain": round(computed / seconds / plain, 3),
        "k_over_1_time": round(seconds / seconds_1, 3),
        "targets": {"fraction_of_plain": ">= 0.6", "k_over_1_time": "<= 2", "asserted": False},
        "peak_gpu_memory_gib": None if peak is None else round(peak, 2),
    }))


if __name__ == "__main__":
    main()
