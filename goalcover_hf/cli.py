"""The ``goalcover`` command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .checks import DEFAULT_OVERLAP
from .coverage import DEFAULT_MIN_COVERAGE
from .gaps import DEFAULT_DISTANCE, DEFAULT_MAX_THEMES, DEFAULT_MIN_THEME
from .models import EMBEDDED_WARNING
from .engines import ENGINES
from .engines.openai import STRUCTURED
from .columns import DEFAULT_THRESHOLD
from .judge import DEFAULT_MODE, MODES


def _warn_if_embedded(model_or_identity: str | None) -> None:
    if model_or_identity and ("embedded" == model_or_identity or "SmolLM2-135M" in model_or_identity):
        print(f"\nNOTE: {EMBEDDED_WARNING}\n", file=sys.stderr)


def _add_report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threshold", type=int, default=None, help="score at which a sample supports a subgoal (default: the run's)")
    p.add_argument("--min-coverage", type=float, default=DEFAULT_MIN_COVERAGE,
                   help=f"target: a subgoal is a gap when less than this fraction of samples support it (default {DEFAULT_MIN_COVERAGE})")
    p.add_argument("--min-samples", type=int, default=0,
                   help="target: a subgoal is also a gap when fewer than this many samples support it (default 0)")


# ---- decompose ---------------------------------------------------------------------------------------------------
def cmd_decompose(args) -> int:
    from transformers.utils import logging as hf_logging

    from .checks import Checker, with_findings
    from .decompose import Proposer, load_examples
    from .interactive import Session, render_list
    from .spec import GoalSpec

    if not args.goal and not args.from_spec:
        print("error: give the goal in quotes, or --from SPEC to refine an existing spec", file=sys.stderr)
        return 2
    out = Path(args.output or args.from_spec or "goal.yaml")
    if out.exists() and not args.force:
        if args.yes:
            print(f"error: {out} exists; pass --force to replace it or choose another -o", file=sys.stderr)
            return 2
        print(f"Note: {out} exists; saving will ask before replacing it.", file=sys.stderr)
    hf_logging.disable_progress_bar()  # loading bars would interleave with the session's prompts
    texts = load_examples(args.examples, n=args.n, template=args.template, split=args.split) if args.examples else ()
    model = _engine_or_name(args.model, args)  # with --trust-remote-code, loaded now with that permission
    proposer = Proposer(model, args.min, args.max, texts, args.with_example)
    uses_model = not args.from_spec or not args.no_model_checks
    if uses_model:
        _warn_if_embedded(args.model)
    if args.from_spec:
        spec = GoalSpec.load(args.from_spec)
        if args.goal:
            spec = spec.model_copy(update={"goal": args.goal.strip()})
    else:
        print(f"Asking {args.model} to decompose the goal (this can take minutes on a CPU)...", file=sys.stderr)
        spec = proposer.propose(args.goal, args.hint or "")
    if args.examples:
        spec.meta["grounding"] = {"data": args.examples, "rows": len(texts)}
    checker = Checker(None if args.no_model_checks else model, args.overlap_threshold)
    if args.yes:
        findings = checker.run(spec)
        spec = with_findings(spec, checker, findings)
        print(render_list(spec, findings))
        spec.save(out, overwrite=True)
        print(f"Saved {len(spec.subgoals)} subgoals to {out}")
        return 0
    dirty = not args.from_spec or spec.goal != GoalSpec.load(args.from_spec).goal
    session = Session(spec, checker, proposer=proposer, output=out, force=args.force, dirty=dirty)
    if session.run() is None:
        print("Nothing saved.", file=sys.stderr)
        return 1
    return 0


# ---- score -------------------------------------------------------------------------------------------------------
def _add_trust_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-remote-code", action="store_true",
                   help="let a transformers model folder run its own Python code (auto_map in its config); off by "
                   "default: read that code first")


def _engine_or_name(model: str | None, args, engine: str = "transformers", base_url: str | None = None):
    """The model as pipeline functions take it: its name, or an engine when it needs more than a name (another
    engine than transformers, or --trust-remote-code)."""
    trust = getattr(args, "trust_remote_code", False)
    if model is None or (engine == "transformers" and not trust):
        return model
    from .engines import engine_options, get_engine, resolve_engine_model

    if engine == "transformers":
        return get_engine(model, "transformers", {"trust_remote_code": True})
    options = engine_options(engine, {"base_url": base_url} if base_url else {})
    return get_engine(resolve_engine_model(model, engine, options)[0], engine, options)


def _resume_note(scorer, started: float) -> str:
    """The one line an interrupted `score` ends with: what was kept, and how to go on."""
    from .cache import PairCache

    if scorer.pair_cache is None:
        return "the pair cache is off (--no-cache), so no judgement was kept; rerun without --no-cache to keep them"
    kept = PairCache(scorer.pair_cache.path).count_since(started)
    return f"{kept} finished judgements are kept in the pair cache — resume with the same command"


def cmd_score(args) -> int:
    import time

    from .data import load_data
    from .formats import RowFormatError, RowRenderer
    from .results import save_run
    from .scorer import TRUNCATED_COLUMN, Scorer
    from .truncation import MARKER

    out = Path(args.output)
    if out.exists() and not args.overwrite:
        print(f"error: {out} exists; choose another -o or pass --overwrite", file=sys.stderr)
        return 2
    options = {"api_key_env": args.api_key_env, "max_in_flight": args.max_in_flight, "structured": args.structured}
    scorer = Scorer(args.spec, args.model, mode=args.mode, explain=args.explain, threshold=args.threshold,
                    template=args.template, batch_size=args.batch_size, engine=args.engine, base_url=args.base_url,
                    engine_options={k: v for k, v in options.items() if v is not None and args.engine == "openai"},
                    cache=False if args.no_cache else args.cache, method=args.method,
                    trust_remote_code=args.trust_remote_code, max_context_tokens=args.max_context_tokens)
    _warn_if_embedded(scorer.config.model_identity)
    ds = load_data(args.data, split=args.split, limit=args.limit)
    try:  # check the layout once, up front, rather than as an error on every row
        RowRenderer(columns=ds.column_names, template=args.template).check_features(ds.features)
    except RowFormatError as err:
        raise RowFormatError(f"{args.data}: {err}") from None
    scorer.sample_budget()  # tokenizer and context, up front: a model that cannot load fails here, not in the map
    if scorer.pair_cache is not None:
        scorer.pair_cache.open()  # a damaged cache file fails here, not in the map
    print(f"Scoring {len(ds)} rows x {len(scorer.spec.subgoals)} subgoals with {scorer.config.model_identity} "
          f"({scorer.config.mode} mode, method {scorer.config.method})", file=sys.stderr)
    if scorer.config.method.endswith("+cal"):
        # once, here: map workers then read the reference judgements from the pair cache
        print("Calibrating: scoring content-free samples against each subgoal", file=sys.stderr)
        scorer.calibration()
    started = time.time()
    try:
        annotated = ds.map(scorer, batched=True, batch_size=args.batch_size, with_indices=True,
                           num_proc=args.num_proc, features=scorer.features(ds.features), desc="goalcover score")
    except KeyboardInterrupt:
        raise KeyboardInterrupt(_resume_note(scorer, started)) from None
    cut = [n for n in annotated[TRUNCATED_COLUMN] if n]
    if cut:
        print(f"warning: {len(cut)} of {len(annotated)} rows were longer than the judge's context "
              f"({scorer.context_tokens} tokens) and were cut in the middle, marked {MARKER.format(n='N')!r}; "
              f"column {TRUNCATED_COLUMN} says how many tokens each lost", file=sys.stderr)
    provenance = scorer.provenance() | {"data": args.data, "embedded": scorer.is_embedded, "model_ref": args.model,
                                        "scorer_args": {"model": args.model, "mode": args.mode, "explain": args.explain,
                                                        "threshold": args.threshold, "template": args.template,
                                                        "batch_size": args.batch_size, "method": args.method,
                                                        "engine": args.engine, "base_url": args.base_url,
                                                        "max_context_tokens": args.max_context_tokens},
                                        "truncation": {"context_tokens": scorer.context_tokens, "rows_cut": len(cut),
                                                       "tokens_cut": sum(cut)}}
    save_run(out, annotated, scorer.spec, provenance, overwrite=args.overwrite)
    if args.jsonl:
        jsonl = Path(args.jsonl)
        tmp = jsonl.with_name(jsonl.name + ".partial")
        annotated.to_json(str(tmp), lines=True, force_ascii=False)
        tmp.replace(jsonl)  # a killed run leaves no half-written file under the final name
    print(f"Wrote {out}. Next: goalcover report {out}")
    return 0


# ---- cache -------------------------------------------------------------------------------------------------------
def cmd_cache(args) -> int:
    from .cache import PairCache

    cache = PairCache(args.path)
    if args.action == "clear":
        n = cache.clear()
        print(f"Removed {n} cached judgements from {cache.path}")
        return 0
    info = cache.info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['path']}: {info['entries']} judgements, {info['bytes'] / 1e6:.2f} MB")
    for s in info["by_settings"]:
        method = f"  method {s['method']}" if s.get("method") else ""
        print(f"  {s['entries']:>8}  {s['model']}  {s['engine']}  {s['prompt_version']}  {s['mode']}{method}")
    return 0


# ---- report, gaps, card, push -----------------------------------------------------------------------------------
def _coverage(run, args):
    """Coverage, target and gaps of a run: themes from RUN/gaps.json when it matches, else gaps without themes."""
    from .coverage import compute_coverage
    from .gaps import GAPS_FILE, Target, find_gaps, load_gaps

    threshold = args.threshold or run.provenance.get("threshold", DEFAULT_THRESHOLD)
    report = compute_coverage(run.dataset, run.spec, threshold=threshold, min_coverage=args.min_coverage)
    target = Target(min_fraction=args.min_coverage, min_samples=args.min_samples)
    gaps, why = load_gaps(run.path / GAPS_FILE, run.spec, report, target)
    if gaps is not None:
        return report, target, gaps, json.loads((run.path / GAPS_FILE).read_text(encoding="utf-8"))
    if (run.path / GAPS_FILE).exists():
        print(f"note: not using {why}; run `goalcover gaps {run.path}` with the same options to refresh it",
              file=sys.stderr)
    else:
        print(f"note: no themes yet; `goalcover gaps {run.path}` finds and names them", file=sys.stderr)
    return report, target, find_gaps(run.dataset, run.spec, report, target=target, cluster=False), None


def cmd_report(args) -> int:
    from .gaps import gaps_text
    from .results import load_run

    run = load_run(args.run)
    report, target, gaps, _ = _coverage(run, args)
    if args.json:
        print(json.dumps({"coverage": report.to_dict(), "gaps": [g.to_dict() for g in gaps],
                          "provenance": run.provenance}, indent=2, default=str))
        return 0
    print(f"Goal: {run.spec.goal}")
    print(f"Judge: {run.provenance.get('model')} ({run.provenance.get('mode')} mode, "
          f"method {run.provenance.get('method', 'expected')})\n")
    print(report.table())
    print()
    print(gaps_text(gaps, target))
    if run.provenance.get("embedded"):
        print(f"\nNOTE: {EMBEDDED_WARNING}")
    return 0


def cmd_gaps(args) -> int:
    from .coverage import compute_coverage
    from .gaps import GAPS_FILE, Target, find_gaps, gaps_document, gaps_text, save_gaps
    from .results import load_run

    run = load_run(args.run)
    threshold = args.threshold or run.provenance.get("threshold", DEFAULT_THRESHOLD)
    report = compute_coverage(run.dataset, run.spec, threshold=threshold, min_coverage=args.min_coverage)
    target = Target(min_fraction=args.min_coverage, min_samples=args.min_samples)
    namer = None
    if not args.no_name:
        namer = args.model or run.provenance.get("model_ref") or ("embedded" if run.provenance.get("embedded") else None)
        if namer is None:
            raise ValueError(f"{run.path}/run.json does not say which model scored it: pass --model or --no-name")
        _warn_if_embedded(namer)
    low_score = threshold - 1 if args.low_score is None else args.low_score
    gaps = find_gaps(run.dataset, run.spec, report, target=target, low_score=low_score,
                     namer=_engine_or_name(namer, args, **_run_engine(run, args)),
                     distance=args.distance, min_theme=args.min_theme, max_themes=args.max_themes)
    settings = {"low_score": low_score, "target": {"min_fraction": target.min_fraction, "min_samples": target.min_samples},
                "distance": args.distance, "min_theme": args.min_theme, "max_themes": args.max_themes}
    document = gaps_document(gaps, run.spec, report, run.provenance, settings)
    out = save_gaps(Path(args.output) if args.output else run.path / GAPS_FILE, document)
    if args.json:
        print(json.dumps(document, indent=2, ensure_ascii=False, default=str))
        return 0
    print(gaps_text(gaps, target))
    if run.provenance.get("embedded") or (namer and namer == "embedded"):
        print(f"\nNOTE: {EMBEDDED_WARNING}")
    print(f"\nWrote {out}. Next: goalcover card {run.path}")
    return 0


def cmd_card(args) -> int:
    from .card import write_card
    from .results import load_run

    run = load_run(args.run)
    report, target, gaps, gap_meta = _coverage(run, args)
    if args.repo_id:
        from .hub import update_hub_card

        if args.readme:
            raise ValueError("--readme and --repo-id do not go together: the Hub card is updated in place")
        commit = update_hub_card(args.repo_id, report, run.provenance, gaps, revision=args.revision, target=target,
                                 gap_meta=gap_meta, template=args.template)
        print(f"Updated the card of https://huggingface.co/datasets/{args.repo_id} ({getattr(commit, 'commit_url', '')})")
        return 0
    readme = Path(args.readme) if args.readme else run.path / "README.md"
    write_card(readme, report, run.provenance, gaps, template=args.template, target=target, gap_meta=gap_meta)
    print(f"Updated {readme} (section between the goalcover markers, 'goalcover' YAML key) and its charts")
    return 0


def cmd_push(args) -> int:
    from .hub import push_run
    from .results import load_run

    run = load_run(args.run)
    report, target, gaps, gap_meta = _coverage(run, args)
    print(f"Pushing {len(run.dataset)} annotated rows to {args.repo_id}...", file=sys.stderr)
    result = push_run(run, args.repo_id, report, gaps, private=args.private, revision=args.revision, target=target,
                      gap_meta=gap_meta, template=args.template)
    print(f"Pushed the dataset and its card: {result['url']}")
    return 0


# ---- filter / synthesize / validate ------------------------------------------------------------------------------
def _new_output(out: Path, run_path: Path | None, overwrite: bool) -> None:
    if run_path is not None and out.resolve() == run_path.resolve():
        raise ValueError(f"{out} is the input run: write the result to another folder")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; choose another -o or pass --overwrite to replace it")


def _pairs(items: list[str] | None, what: str, cast=str) -> dict:
    """Parse ``KEY=VALUE`` options; the error names the bad item."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{what}: expected SUBGOAL=VALUE, got {item!r}")
        try:
            out[key.strip()] = cast(value.strip())
        except ValueError:
            raise ValueError(f"{what}: {value!r} in {item!r} is not a valid value") from None
    return out


def cmd_filter(args) -> int:
    from .filtering import compare_table, filter as filter_rows
    from .results import load_run, save_run

    run = load_run(args.run)
    out = Path(args.output) if args.output else None
    if out is None and not args.dry_run:
        raise ValueError("give -o FOLDER for the filtered run (or --dry-run to only see the table)")
    if out is not None and not args.dry_run:
        _new_output(out, run.path, args.overwrite)
    threshold = args.threshold or run.provenance.get("threshold", DEFAULT_THRESHOLD)
    result = filter_rows(
        run.dataset, run.spec, subgoals=args.subgoals, threshold=threshold,
        min_scores=_pairs(args.min, "--min", int), require=None if args.require == "none" else args.require,
        min_mean=args.min_mean, min_score=args.min_score, cap=args.cap, min_coverage=args.min_coverage,
    )
    print(result.rule.describe())
    print(compare_table(result.before, result.after))
    if result.dropped:
        print("dropped: " + ", ".join(f"{k} {v}" for k, v in result.dropped.items()))
    if args.dry_run:
        print("(dry run: nothing written)")
        return 0
    if len(result.dataset) == 0:
        print("error: no row passes this rule; nothing written", file=sys.stderr)
        return 1
    provenance = run.provenance | {"filter": result.provenance(), "source_run": str(run.path)}
    save_run(out, result.dataset, run.spec, provenance, overwrite=args.overwrite)
    print(f"Wrote {out} ({len(result.dataset)} rows). Next: goalcover report {out}")
    return 0


def _run_engine(run, args) -> dict:
    """The engine (and server) that scored the run, unless the user names another: new rows are judged alike."""
    saved = run.provenance.get("scorer_args", {})
    engine = getattr(args, "engine", None) or run.provenance.get("engine", "transformers")
    url = getattr(args, "base_url", None) or saved.get("base_url")
    return {"engine": engine, "base_url": url if engine == "openai" else None}


def _scorer_for_run(run, args):
    """The scorer that made the run's scores (from run.json), with any option the user overrides."""
    from .scorer import Scorer

    saved = run.provenance.get("scorer_args", {})
    scorer = Scorer(run.spec, args.model or saved.get("model", "embedded"),
                    mode=args.mode or saved.get("mode") or run.provenance.get("mode", "generate"),
                    explain="none", threshold=args.threshold or run.provenance.get("threshold", DEFAULT_THRESHOLD),
                    template=args.template if args.template is not None else saved.get("template"),
                    batch_size=args.batch_size, method=run.provenance.get("method", "expected"),
                    trust_remote_code=args.trust_remote_code, **_run_engine(run, args))
    if run.provenance.get("model") and scorer.config.model_identity != run.provenance["model"]:
        print(f"warning: the run was scored by {run.provenance['model']}, the new rows by "
              f"{scorer.config.model_identity}: their scores are not comparable", file=sys.stderr)
    return scorer


def cmd_synthesize(args) -> int:
    from .coverage import compute_coverage
    from .filtering import compare_table
    from .results import load_run, save_run
    from .synthesize import synthesize

    run = load_run(args.run)
    out = Path(args.output)
    _new_output(out, run.path, args.overwrite)
    scorer = _scorer_for_run(run, args)
    _warn_if_embedded(scorer.config.model)
    result = synthesize(run.spec, run.dataset, subgoals=args.subgoals, n=args.n, scorer=scorer,
                        examples=args.examples, dedup=args.dedup or None, seed=args.seed,
                        max_chars=args.max_chars, min_coverage=args.min_coverage)
    print(result.text())
    threshold = scorer.config.threshold
    print(compare_table(compute_coverage(run.dataset, run.spec, threshold, args.min_coverage),
                        compute_coverage(result.dataset, run.spec, threshold, args.min_coverage)))
    provenance = run.provenance | {"synthesis": result.provenance(), "source_run": str(run.path)}
    save_run(out, result.dataset, run.spec, provenance, overwrite=args.overwrite)
    print(f"Wrote {out}: {len(run.dataset)} rows + {len(result.synthetic)} synthetic (column goalcover_synthetic)")
    return 0


def cmd_validate(args) -> int:
    from .data import load_data
    from .scorer import Scorer
    from .spec import GoalSpec
    from .validate import validate

    out = Path(args.output)
    report_files = [out / "validation.json", out / "validation.md"]
    if any(p.exists() for p in report_files) and not args.overwrite:
        raise FileExistsError(f"{out} already holds a validation report; choose another -o or pass --overwrite")
    template = Path(args.template_file).read_text(encoding="utf-8") if args.template_file else args.template
    spec = GoalSpec.load(args.spec)
    scorer = Scorer(spec, args.model or "embedded", mode=args.mode or "generate", explain="none",
                    template=template, batch_size=args.batch_size, trust_remote_code=args.trust_remote_code,
                    engine=args.engine or "transformers", base_url=args.base_url)
    _warn_if_embedded(scorer.config.model)
    ds = load_data(args.data, split=args.split)
    targets = None if args.targets in (None, ["all"]) else args.targets
    result = validate(ds, spec, scorer, targets=targets, operators=_pairs(args.operator, "--operator"), n=args.n,
                      seed=args.seed, bootstrap=args.bootstrap, domain=args.domain or Path(args.data).stem)
    out.mkdir(parents=True, exist_ok=True)
    report_files[0].write_text(json.dumps(result.to_dict(), indent=2, default=str), encoding="utf-8")
    report_files[1].write_text(result.to_markdown(), encoding="utf-8")
    print(result.to_markdown())
    print(f"Wrote {report_files[0]} and {report_files[1]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="goalcover",
        description="Which capabilities does your fine-tuning data support? Decompose a goal, score every sample "
        "against every subgoal, and report coverage and gaps.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("decompose", help="decompose a goal into subgoals, check them, shape them, save a spec",
                       description="The model proposes subgoals; you accept, edit, split, merge, delete, add, "
                       "regenerate and reorder them while checks (atomic, evaluable, overlap, goal coverage) run on "
                       "every change; then save. Works with piped stdin too.")
    p.add_argument("goal", nargs="?", help="the high-level goal, in quotes (optional with --from)")
    p.add_argument("--from", dest="from_spec", metavar="SPEC",
                   help="start from an existing spec or proposal YAML instead of asking the model (and save to it)")
    p.add_argument("-o", "--output", help="spec file to write (default: the --from file, else goal.yaml)")
    p.add_argument("--model", default="embedded", help="embedded | HF id | folder | .gguf (proposals and model checks)")
    p.add_argument("--min", type=int, default=3, help="fewest subgoals (default 3)")
    p.add_argument("--max", type=int, default=8, help="most subgoals (default 8, at most 12)")
    p.add_argument("--examples", metavar="DATA", help="show the model rows of this data (file, folder or Hub id) "
                   "so proposals use its vocabulary; rows are never taken as correct answers")
    p.add_argument("--n", type=int, default=20, help="how many rows --examples shows (default 20)")
    p.add_argument("--template", help="Jinja template turning an --examples row into text")
    p.add_argument("--split", default="train", help="split of --examples (default train)")
    p.add_argument("--with-example", action="store_true", help="also ask for a sample that would score 5, per subgoal")
    p.add_argument("--hint", help="what you want from the proposal, e.g. 'focus on safety'")
    p.add_argument("--no-model-checks", action="store_true",
                   help="skip the model's atomic/evaluable/coverage checks (heuristics and overlap still run)")
    p.add_argument("--overlap-threshold", type=float, default=DEFAULT_OVERLAP,
                   help=f"cosine similarity at which two subgoals overlap (default {DEFAULT_OVERLAP})")
    p.add_argument("--yes", action="store_true", help="no session: accept the proposal, print the checks, save")
    p.add_argument("--force", action="store_true", help="replace the output file without asking")
    _add_trust_option(p)
    p.set_defaults(func=cmd_decompose)

    p = sub.add_parser("score", help="score every sample against every subgoal")
    p.add_argument("--data", required=True, help="a .jsonl/.json/.csv/.parquet file, a folder, or a Hub dataset id")
    p.add_argument("--spec", required=True, help="the goal spec YAML")
    p.add_argument("--model", default="embedded",
                   help="embedded | HF id | folder | .gguf (default embedded); with --engine openai: the served model name")
    p.add_argument("--engine", choices=ENGINES, default="transformers",
                   help="transformers (default) | llamacpp (a .gguf, needs goalcover_hf[llamacpp]) | "
                   "openai (an OpenAI-compatible server: vLLM, SGLang, TGI, llama.cpp)")
    p.add_argument("--base-url", help="--engine openai: the server, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--api-key-env", help="--engine openai: environment variable holding the API key "
                   "(default GOALCOVER_API_KEY, then OPENAI_API_KEY)")
    p.add_argument("--max-in-flight", type=int, help="--engine openai: requests in flight per process (default 8)")
    p.add_argument("--structured", choices=("auto",) + STRUCTURED,
                   help="--engine openai: the server's structured-output parameter (default auto: probe)")
    p.add_argument("--num-proc", type=int, help="worker processes for datasets.map (each opens its own engine)")
    p.add_argument("--mode", choices=MODES, default=DEFAULT_MODE,
                   help=f"logprobs: digit probabilities, explanations where --explain asks; generate: JSON per pair "
                   f"(default {DEFAULT_MODE})")
    p.add_argument("--explain", choices=("low", "all", "none"), default="low", help="logprobs mode: which pairs get explanations")
    p.add_argument("--method", default="expected", metavar="METHOD",
                   help="how answers become a score: expected (default), score, no_anchors, contrastive, consistency, "
                   "verdict_first, subgoal_first; suffix +cal to calibrate on content-free samples (README: judge)")
    p.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD, help="support threshold (default 4)")
    p.add_argument("--template", help="Jinja template turning a row into text, e.g. '{{ question }}\\n{{ answer }}'")
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int, help="score only the first N rows")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--jsonl", help="also write the annotated rows to this JSONL file")
    p.add_argument("-o", "--output", required=True, help="run folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace the run folder if it exists")
    p.add_argument("--cache", help="pair cache SQLite file (default: the goalcover cache folder's pairs.sqlite)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the pair cache")
    p.add_argument("--max-context-tokens", type=int,
                   help="tokens a prompt and its reply may take (default: the model's context; a server's must be "
                   "given unless it reports one). Longer rows are cut in the middle, marked, and counted in "
                   "gc_truncated_tokens")
    _add_trust_option(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("cache", help="show or clear the cache of (sample, subgoal) judgements")
    p.add_argument("action", choices=("info", "clear"))
    p.add_argument("--path", help="pair cache SQLite file (default: the goalcover cache folder's pairs.sqlite)")
    p.add_argument("--json", action="store_true", help="info: print JSON")
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("report", help="print the coverage table and gaps of a run")
    p.add_argument("run", help="run folder written by `goalcover score`")
    _add_report_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("gaps", help="cluster low-score explanations into named gaps; write RUN/gaps.json")
    p.add_argument("run", help="run folder written by `goalcover score`")
    _add_report_options(p)
    p.add_argument("--low-score", type=int, help="analyse pairs scoring at or below this (default: threshold - 1)")
    p.add_argument("--model", help="model that names the themes (default: the run's judge)")
    p.add_argument("--no-name", action="store_true", help="do not name themes; title them by their most central explanation")
    p.add_argument("--distance", type=float, default=DEFAULT_DISTANCE,
                   help=f"cosine distance at which clusters stop merging (default {DEFAULT_DISTANCE}; lower: more themes)")
    p.add_argument("--min-theme", type=int, default=DEFAULT_MIN_THEME, help=f"rows a theme needs (default {DEFAULT_MIN_THEME})")
    p.add_argument("--max-themes", type=int, default=DEFAULT_MAX_THEMES,
                   help=f"themes kept per subgoal (default {DEFAULT_MAX_THEMES})")
    p.add_argument("-o", "--output", help="gaps file to write (default RUN/gaps.json)")
    p.add_argument("--json", action="store_true", help="print the gaps document instead of the report")
    _add_trust_option(p)
    p.set_defaults(func=cmd_gaps)

    p = sub.add_parser("card", help="write or update the dataset card's coverage section (locally or on the Hub)")
    p.add_argument("run", help="run folder written by `goalcover score`")
    p.add_argument("--readme", help="README.md to update (default RUN/README.md)")
    p.add_argument("--repo-id", help="update the card of this existing Hub dataset (USER/NAME) instead")
    p.add_argument("--revision", help="with --repo-id: the branch to update (default main)")
    p.add_argument("--template", help="a Jinja card-section template to use instead of the built-in one")
    _add_report_options(p)
    p.set_defaults(func=cmd_card)

    p = sub.add_parser("push", help="push the annotated dataset, its card and charts to the Hub")
    p.add_argument("run", help="run folder written by `goalcover score`")
    p.add_argument("--repo-id", required=True, help="dataset repo USER/NAME (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", help="branch to push to (created if missing; default main)")
    p.add_argument("--template", help="a Jinja card-section template to use instead of the built-in one")
    _add_report_options(p)
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("filter", help="keep the rows that support chosen subgoals (optionally balanced)")
    p.add_argument("run", help="run folder written by `goalcover score`")
    p.add_argument("-o", "--output", help="run folder to write with the kept rows")
    p.add_argument("--subgoals", nargs="+", metavar="ID", help="subgoal set the rules apply to (default: all)")
    p.add_argument("--require", choices=("any", "all", "none"), default="any",
                   help="keep rows supporting any (default) / all of the set; none: no support rule")
    p.add_argument("--threshold", type=int, help="score at which a row supports a subgoal (default: the run's)")
    p.add_argument("--min", nargs="+", metavar="ID=SCORE", help="per-subgoal support levels, e.g. states_dose=5")
    p.add_argument("--min-mean", type=float, help="keep rows whose mean score over the set is at least this")
    p.add_argument("--min-score", type=int, help="keep rows whose lowest score over the set is at least this")
    p.add_argument("--cap", type=int, help="balance: drop a row once every subgoal it supports has CAP kept rows")
    p.add_argument("--min-coverage", type=float, default=DEFAULT_MIN_COVERAGE, help="gap line for the tables")
    p.add_argument("--dry-run", action="store_true", help="print the before/after coverage table, write nothing")
    p.add_argument("--overwrite", action="store_true", help="replace the output folder if it exists")
    p.set_defaults(func=cmd_filter)

    def judge_options(p, default_mode):
        p.add_argument("--model", help="judge (and writer) model: embedded | HF id | folder | .gguf"
                       + (" (default: the run's)" if default_mode is None else " (default embedded)"))
        p.add_argument("--mode", choices=MODES, default=default_mode,
                       help="generate: JSON per pair; logprobs: digit probabilities (much cheaper)")
        p.add_argument("--template", help="Jinja row template (default: " + ("the run's)" if default_mode is None
                                                                            else "detect the layout)"))
        p.add_argument("--batch-size", type=int, default=8)
        p.add_argument("--engine", choices=ENGINES,
                       help="transformers, llamacpp or openai (default: " + ("the run's)" if default_mode is None
                                                                              else "transformers)"))
        p.add_argument("--base-url", help="--engine openai: the server (default: the run's)")
        _add_trust_option(p)

    p = sub.add_parser("synthesize", help="generate rows for under-covered subgoals, keep those that re-score well")
    p.add_argument("run", help="run folder written by `goalcover score`")
    p.add_argument("--subgoals", nargs="+", metavar="ID", help="subgoals to write rows for (default: the gaps)")
    p.add_argument("--n", type=int, default=4, help="rows to generate per subgoal (default 4)")
    p.add_argument("--examples", type=int, default=3, help="real rows shown as style examples (default 3)")
    p.add_argument("--dedup", type=float, default=0.9,
                   help="cosine similarity at which a new row is a near-duplicate (default 0.9; 0: no check)")
    p.add_argument("--max-chars", type=int, default=600,
                   help="longest text per field a new row may have (default 600; shorter compiles and runs faster)")
    p.add_argument("--threshold", type=int, help="score a new row needs on its target (default: the run's)")
    p.add_argument("--min-coverage", type=float, default=DEFAULT_MIN_COVERAGE, help="gap line (default 0.2)")
    p.add_argument("--seed", type=int, default=0)
    judge_options(p, None)
    p.add_argument("-o", "--output", required=True, help="run folder to write: the run's rows plus the kept new rows")
    p.add_argument("--overwrite", action="store_true", help="replace the output folder if it exists")
    p.set_defaults(func=cmd_synthesize)

    p = sub.add_parser("validate", help="corruption experiment: does the judge notice when one capability is removed?")
    p.add_argument("--data", required=True, help="a data file, folder or Hub dataset id")
    p.add_argument("--spec", required=True, help="the goal spec YAML (meta.corruption may name operators)")
    p.add_argument("--targets", nargs="+", default=["all"], metavar="ID", help="subgoals to corrupt (default all)")
    p.add_argument("--operator", nargs="+", metavar="ID=OP",
                   help="corruption per subgoal, e.g. documents_behavior=strip_docstrings:prompt (default: the "
                   "spec's meta.corruption, else llm_rewrite)")
    p.add_argument("--n", type=int, default=20, help="rows per target (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the CIs (default 1000)")
    p.add_argument("--domain", help="name shown in the table (default: the data file's name)")
    p.add_argument("--template-file", help="file holding the Jinja row template")
    p.add_argument("--split", default="train")
    judge_options(p, "generate")
    p.add_argument("-o", "--output", required=True, help="folder for validation.json and validation.md")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    p.set_defaults(func=cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .card import CardError
    from .data import DataError
    from .engines import EngineMisconfigured
    from .formats import RowFormatError
    from .hub import HubError
    from .models import ModelNotFoundError
    from .results import ResultsError
    from .spec import SpecError

    try:
        return args.func(args)
    except (SpecError, DataError, RowFormatError, ModelNotFoundError, CardError, ResultsError, HubError, FileExistsError,
            ValueError, KeyError, EngineMisconfigured, ImportError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) and err.args else err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C: one line, no traceback
        note = err.args[0] if err.args and isinstance(err.args[0], str) else ""
        print(f"goalcover: interrupted{'; ' + note if note else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
