"""Judge validity benchmark: how well a judge's scores track programmatically checked truth. Prints ONE JSON line.

Pairs come from ``judge_pairs.py`` (real rows of ../shared/data/external, labels checked by program, plus controlled
corruptions that remove exactly one property). For each method it reports: ROC AUC of the score against the label
(over all pairs, per domain, and the mean of per-subgoal AUCs), Spearman correlation with the label, corruption
selectivity (mean score drop on the corrupted subgoal vs the other subgoals of the same sample, and Cohen's d between
the two), and seconds per pair (judge time that method used, calibration included, over the pairs; model load
excluded; a judgement reused from ``--cache`` counts the seconds measured when it was made). Judgements are memoized,
so methods that share prompts pay for them once. Per subgoal: pairs and positives, and per method the AUC with its
95% interval (Hanley-McNeil). ``--limit`` keeps at least one positive and one negative of every subgoal where it
can, and says which subgoal lacks one where it cannot.

The digits' raw share: in logprobs mode the judge's probabilities of "1".."5" are renormalized over the five digits,
which hides a judge that wanted to answer something else. Their sum before renormalizing is recorded per judgement
(``--cache``, ``--pairs-out``) and summarized per method (``digit_share``: mean, min, 10th percentile, how many
below one half) when the engine can give it (:data:`RAW_SHARE_NEED`); otherwise the output says it is unavailable.

Methods are those of ``goalcover_hf.judging`` (score, expected, no_anchors, contrastive, consistency, verdict_first,
subgoal_first), each optionally suffixed ``+cal`` (calibrated on content-free samples) or ``+calx`` (calibrated on
mismatched samples: originals from the other domains). ``--method all`` runs every combination the mode supports (in
generate mode ``expected`` is ``score``, so it is left out). ``--engine llamacpp`` runs a .gguf through llama.cpp
(``--threads N``), much faster on a CPU than the dequantized transformers model.

Usage:
    python benchmarks/bench_judge.py --model embedded --mode logprobs --method expected,expected+cal --limit 200
    python benchmarks/bench_judge.py --model PATH.gguf --engine llamacpp --threads 2 --method all --limit 100
    python benchmarks/bench_judge.py --model PATH.gguf --engine llamacpp --mode generate --method score --limit 40
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent))

from judge_pairs import Pair, build_pairs, lacking, limit_pairs, summary, to_subgoal  # noqa: E402

from goalcover_hf import judging  # noqa: E402
from goalcover_hf.columns import Judgement  # noqa: E402
from goalcover_hf.prompts import load_prompt  # noqa: E402
from goalcover_hf.spec import GoalSpec, Subgoal  # noqa: E402

CALIBRATIONS = ("", "+cal", "+calx")
DIGITS = ("1", "2", "3", "4", "5")
RAW_SHARE_NEED = ("the engine's choice_probs / choice_probs_shared take renormalize=False (the choices' probabilities "
                  "under the full next-token distribution, not renormalized over the choices)")


# ---- statistics ----------------------------------------------------------------------------------------------------
def ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties get their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def auc(values: list[float], labels: list[int]) -> float | None:
    """ROC AUC (Mann-Whitney U, ties count half); None unless both labels occur."""
    pos = sum(labels)
    neg = len(labels) - pos
    if not pos or not neg:
        return None
    r = ranks(values)
    return (sum(rk for rk, y in zip(r, labels) if y) - pos * (pos + 1) / 2) / (pos * neg)


def auc_interval(a: float | None, n_pos: int, n_neg: int, z: float = 1.96) -> list[float] | None:
    """95% interval of an AUC by Hanley & McNeil (1982): ``a +- z * SE``, clipped to [0, 1].

    A perfect split on few pairs would get a zero-width interval (SE is 0 at 0 and 1): the SE is taken as if half a
    pair were misranked, so a perfect split of one positive and one negative still spans [0.02, 1].
    """
    if a is None or not n_pos or not n_neg:
        return None
    half = 0.5 / (n_pos * n_neg)
    av = min(max(a, half), 1 - half)
    q1, q2 = av / (2 - av), 2 * av * av / (1 + av)
    var = (av * (1 - av) + (n_pos - 1) * (q1 - av * av) + (n_neg - 1) * (q2 - av * av)) / (n_pos * n_neg)
    se = math.sqrt(max(var, 0.0))
    return [round(max(0.0, a - z * se), 3), round(min(1.0, a + z * se), 3)]


def spearman(x: list[float], y: list[float]) -> float | None:
    if len(x) < 3:
        return None
    rx, ry = ranks(x), ranks(y)
    mx, my = mean(rx), mean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx and syy else None


def cohens_d(a: list[float], b: list[float]) -> float | None:
    """(mean a - mean b) / pooled standard deviation; None when undefined."""
    if len(a) < 2 or len(b) < 2:
        return None
    va = sum((x - mean(a)) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mean(b)) ** 2 for x in b) / (len(b) - 1)
    pooled = math.sqrt(((len(a) - 1) * va + (len(b) - 1) * vb) / (len(a) + len(b) - 2))
    return (mean(a) - mean(b)) / pooled if pooled else None


def _r(x: float | None, nd: int = 3):
    return None if x is None else round(x, nd)


# ---- the digits' raw probability share --------------------------------------------------------------------------
class ShareRecorder:
    """An engine wrapper that records, for every chat it is asked choice probabilities of, the probabilities the
    model put on the choices before they were renormalized over the choices. Everything else is the wrapped
    engine's (it is no :class:`~goalcover_hf.engines.Engine` subclass, so methods that class may gain pass through).

    Their sum (the digits' raw share) tells a judge that answers "1".."5" from one that wanted to say something else
    ("The", "Yes") and had its few leftover percent renormalized into a confident-looking score. It needs the engine
    to take ``renormalize=False`` (see :data:`RAW_SHARE_NEED`); with an engine that does not, judging is unchanged and
    every share is recorded as None.
    """

    def __init__(self, inner, counter=None):
        self.inner, self.name, self.identity = inner, inner.name, inner.identity
        self.counter = counter  # the scorer's own counter: samples are cut to fit exactly as without the wrapper
        self.raw = all("renormalize" in inspect.signature(f).parameters
                       for f in (inner.choice_probs, inner.choice_probs_shared))
        self.records: list[tuple[tuple[str, ...], list[dict], list[float] | None]] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def token_counter(self):
        return self.counter if self.counter is not None else self.inner.token_counter()

    def generate_json(self, chats, schema, max_new_tokens):
        return self.inner.generate_json(chats, schema, max_new_tokens)

    def generate_json_shared(self, groups, schema, max_new_tokens):
        return self.inner.generate_json_shared(groups, schema, max_new_tokens)

    def choice_probs(self, chats, choices):
        if not self.raw:
            return self._keep(chats, choices, None, self.inner.choice_probs(chats, choices))
        return self._keep(chats, choices, self.inner.choice_probs(chats, choices, renormalize=False))

    def choice_probs_shared(self, groups, choices):
        if not self.raw:
            probs = self.inner.choice_probs_shared(groups, choices)
            return [self._keep(g, choices, None, p) for g, p in zip(groups, probs)]
        raws = self.inner.choice_probs_shared(groups, choices, renormalize=False)
        return [self._keep(g, choices, r) for g, r in zip(groups, raws)]

    def _keep(self, chats, choices, raws, probs=None) -> list:
        """Record each chat's raw probabilities (None: not had) and return the renormalized ones."""
        if raws is None:
            self.records += [(tuple(choices), chat, None) for chat in chats]
            return probs
        out = []
        for chat, raw in zip(chats, raws):
            self.records.append((tuple(choices), chat, None if raw is None else [float(x) for x in raw]))
            total = sum(raw) if raw is not None else 0.0
            out.append([x / total for x in raw] if total > 0 else None)  # no mass on any choice: no score
        return out

    def take(self) -> list:
        records, self.records = self.records, []
        return records


def _shows(chat: list[dict], text: str) -> bool:
    return any(text in m["content"] for m in chat if m["role"] == "user")


def chunk_shares(records: list, texts: list[str]) -> list[float | None]:
    """Each text's digit share from the records of one ``judge_texts(texts, [subgoal])`` call, in call order.

    Plain prompts ask one digit chat per text. The verdict prompt asks a Yes/No chat per text, then a digit chat
    after each verdict: its share is the verdict-weighted mean ``P(Yes) s(Yes) + P(No) s(No)``. A record whose chat
    does not show its text (a text cut to fit the context), or counts that do not match, give None.
    """
    digits = [r for r in records if r[0] == DIGITS]
    verdicts = [r for r in records if r[0] != DIGITS]
    n = len(texts)
    out: list[float | None] = [None] * n
    if not verdicts and len(digits) == n:
        for k, (t, (_, chat, raw)) in enumerate(zip(texts, digits)):
            out[k] = sum(raw) if raw is not None and _shows(chat, t) else None
    elif len(verdicts) == n and len(digits) == len(verdicts[0][0]) * n:
        said = verdicts[0][0]
        for k, (t, (_, chat, vraw)) in enumerate(zip(texts, verdicts)):
            # the digit chat that shows this text after each verdict, whatever order the method asked them in
            after = [next((raw for _, c, raw in digits if _shows(c, t) and {"role": "assistant", "content": v} in c),
                          None) for v in said]
            if vraw is None or not sum(vraw) or any(r is None for r in after) or not _shows(chat, t):
                continue
            out[k] = sum(v / sum(vraw) * sum(r) for v, r in zip(vraw, after))
    return out


def share_stats(shares: list[float | None]) -> dict | None:
    """Summary of the digit shares of the judgements a method used (None: none recorded)."""
    have = sorted(x for x in shares if x is not None)
    if not have:
        return None
    return {"n": len(have), "mean": _r(mean(have)), "min": _r(have[0]), "p10": _r(have[len(have) // 10]),
            "below_half": sum(x < 0.5 for x in have)}


# ---- memoized judging ----------------------------------------------------------------------------------------------
class MemoJudge:
    """Wraps a raw judge (``Scorer.raw``): each (sample text, prompt, subgoal wording) is judged once and its cost
    recorded, with its digit share when ``recorder`` (the :class:`ShareRecorder` the scorer judges through) is given.

    With ``cache_file`` (JSON lines, appended as pairs are judged), judgements, their measured seconds and shares
    persist across runs of the same model, engine and mode, so a long run on a slow judge can be split, resumed, or
    extended with more methods without paying twice. Keys include the scorer's model identity, engine (when not
    transformers, so files written before engines were recorded still load), mode and prompt versions.
    """

    def __init__(self, scorer, cache_file: Path | None = None, recorder: ShareRecorder | None = None):
        self.scorer = scorer
        self.recorder = recorder
        self.cache: dict[tuple[str, str], Judgement] = {}
        self.seconds: dict[tuple[str, str], float] = {}
        self.shares: dict[tuple[str, str], float | None] = {}
        self.used: set[tuple[str, str]] = set()
        self.cache_file = cache_file
        c = getattr(scorer, "config", None)
        self.namespace = f"{c.model_identity}|{c.mode}|{c.prompt_version}" if c else type(scorer).__name__
        if c and c.engine != "transformers":  # other engines round differently and take other seconds per pair
            self.namespace += f"|{c.engine}"
        if cache_file and cache_file.is_file():
            with open(cache_file, encoding="utf-8") as fh:
                for line in fh:
                    row = json.loads(line)
                    if row["ns"] == self.namespace:
                        key = (row["text"], row["sub"])
                        self.cache[key] = Judgement(**row["judgement"])
                        self.seconds[key] = row["seconds"]
                        self.shares[key] = row.get("share")

    @staticmethod
    def _key_sub(sub: Subgoal, prompt: str | None) -> str:
        # the default prompt keeps the keys of cache files written before other prompts existed
        return sub.model_dump_json() if prompt is None else f"{load_prompt(prompt).version}|{sub.model_dump_json()}"

    def judge_texts(self, samples, subgoals=None, prompt: str | None = None):
        subgoals = list(subgoals)
        extra = {} if prompt is None else {"prompt": prompt}
        for sub in subgoals:
            key_sub = self._key_sub(sub, prompt)
            todo = list(dict.fromkeys(t for t in samples if (t, key_sub) not in self.cache))
            step = getattr(getattr(self.scorer, "config", None), "batch_size", 8)
            for k in range(0, len(todo), step):  # one scorer batch at a time: each is saved as soon as it is made
                chunk = todo[k : k + step]
                if self.recorder:
                    self.recorder.take()  # drop what other callers left
                start = time.perf_counter()
                if prompt == judging.PROMPTS["verdict_first"]:  # the verdict mixing is the method's, over the raw judge
                    judged = judging.judge(self.scorer, chunk, [sub], "verdict_first")
                else:
                    judged = self.scorer.judge_texts(chunk, [sub], **extra)
                each = (time.perf_counter() - start) / len(chunk)
                shares = chunk_shares(self.recorder.take(), chunk) if self.recorder else [None] * len(chunk)
                for t, row, share in zip(chunk, judged, shares):
                    self.cache[(t, key_sub)] = row[0]
                    self.seconds[(t, key_sub)] = each
                    self.shares[(t, key_sub)] = share
                if self.cache_file:
                    with open(self.cache_file, "a", encoding="utf-8") as fh:
                        for t, row, share in zip(chunk, judged, shares):
                            fh.write(json.dumps({"ns": self.namespace, "text": t, "sub": key_sub, "seconds": each,
                                                 "share": share, "judgement": asdict(row[0])}) + "\n")
        keys = [[(t, self._key_sub(s, prompt)) for s in subgoals] for t in samples]
        self.used.update(k for row in keys for k in row)
        return [[self.cache[k] for k in row] for row in keys]

    def share(self, text: str, sub: Subgoal, prompt: str | None = None) -> float | None:
        """The digit share recorded for one judgement (None: not judged, or not recorded)."""
        return self.shares.get((text, self._key_sub(sub, prompt)))

    def take_usage(self) -> tuple[float, list[float | None]]:
        """Seconds and digit shares of the judgements used since the last call."""
        spent = sum(self.seconds[k] for k in self.used)
        shares = [self.shares.get(k) for k in self.used]
        self.used = set()
        return spent, shares


# ---- evaluation ----------------------------------------------------------------------------------------------------
def score_pairs(judge, pairs: list[Pair], subgoals: dict[str, Subgoal], method: str) -> dict[tuple[str, str], float]:
    """Value of ``method`` (e.g. ``"expected+cal"``) for every (sample_id, subgoal_id) of ``pairs``; failed: absent."""
    base, _, cal = method.partition("+")
    values = {}
    domains = list(dict.fromkeys(p.domain for p in pairs))
    for domain in domains:
        dp = [p for p in pairs if p.domain == domain]
        sample_ids = list(dict.fromkeys(p.sample_id for p in dp))
        texts = {p.sample_id: p.text for p in dp}
        subs = [subgoals[s] for s in dict.fromkeys(p.subgoal_id for p in dp)]
        judged = judging.judge(judge, [texts[s] for s in sample_ids], subs, base)
        if cal:
            refs = judging.CONTENT_FREE if cal == "cal" else mismatched(pairs, domain)
            judged = judging.apply_calibration(judged, subs, judging.calibrate(judge, subs, base, samples=refs))
        for sid, row in zip(sample_ids, judged):
            for sub, j in zip(subs, row):
                if j.error is None:
                    values[(sid, sub.id)] = j.expected
    return values


def mismatched(pairs: list[Pair], domain: str, per_domain: int = 1) -> list[str]:
    """Original samples from the other domains (they show none of this domain's subgoals)."""
    out = []
    for other in dict.fromkeys(p.domain for p in pairs):
        if other != domain:
            originals = list(dict.fromkeys(p.text for p in pairs if p.domain == other and p.target is None))
            out += originals[:per_domain]
    return out


def evaluate(pairs: list[Pair], values: dict[tuple[str, str], float]) -> dict:
    """Validity figures for one method's values.

    Selectivity: for each variant, the score change of its target subgoal and of the other subgoals of the same
    sample, in the direction its target label moved (a removing variant should lower the target's score, an adding
    one raise it; both count as a positive drop).
    """
    scored = [(p, values[(p.sample_id, p.subgoal_id)]) for p in pairs if (p.sample_id, p.subgoal_id) in values]
    v = [x for _, x in scored]
    y = [p.label for p, _ in scored]
    per_domain = {}
    for d in dict.fromkeys(p.domain for p in pairs):
        dv = [(x, p.label) for p, x in scored if p.domain == d]
        per_domain[d] = _r(auc([x for x, _ in dv], [lab for _, lab in dv]))
    by_subgoal = {}
    for s in dict.fromkeys(p.subgoal_id for p in pairs):
        sv = [(x, p.label) for p, x in scored if p.subgoal_id == s]
        pos = sum(lab for _, lab in sv)
        a = auc([x for x, _ in sv], [lab for _, lab in sv])
        by_subgoal[s] = {"scored": len(sv), "auc": _r(a), "auc_ci": auc_interval(a, pos, len(sv) - pos)}
    per_sub = [b["auc"] for b in by_subgoal.values() if b["auc"] is not None]
    target, other = [], []
    for p, x in scored:
        if p.target is None or (p.group, p.subgoal_id) not in values:
            continue
        drop = (values[(p.group, p.subgoal_id)] - x) * (-1 if p.meta.get("adds") else 1)
        (target if p.subgoal_id == p.target else other).append(drop)
    return {
        "auc": _r(auc(v, y)),
        "spearman": _r(spearman(v, [float(t) for t in y])),
        "auc_within_subgoal": _r(mean(per_sub)) if per_sub else None,
        "auc_by_domain": per_domain,
        "auc_by_subgoal": by_subgoal,
        "mean_pos": _r(mean([x for x, t in zip(v, y) if t])) if any(y) else None,
        "mean_neg": _r(mean([x for x, t in zip(v, y) if not t])) if not all(y) else None,
        "selectivity": {
            "target_drop": _r(mean(target)) if target else None,
            "nontarget_drop": _r(mean(other)) if other else None,
            "cohens_d": _r(cohens_d(target, other)),
            "n_target": len(target),
            "n_nontarget": len(other),
        },
        "errors": len(pairs) - len(scored),
    }


def subgoal_counts(pairs: list[Pair]) -> dict[str, dict[str, int]]:
    """Pairs and positives per subgoal."""
    return {s: {"pairs": sum(p.subgoal_id == s for p in pairs),
                "positives": sum(p.label for p in pairs if p.subgoal_id == s)}
            for s in dict.fromkeys(p.subgoal_id for p in pairs)}


def expand_methods(spec: str, mode: str) -> list[str]:
    if spec == "all":
        # generate mode: the expected value is the generated score, so "expected" would repeat "score"
        bases = [m for m in judging.METHODS if not (mode == "generate" and m == "expected")]
        return [b + c for b in bases for c in CALIBRATIONS]
    methods = [m.strip() for m in spec.split(",") if m.strip()]
    for m in methods:
        try:
            judging.parse_method(m, [c.lstrip("+") for c in CALIBRATIONS if c])
        except ValueError as err:
            raise SystemExit(f"bench_judge: {err}") from None
    return methods


def run(judge, pairs: list[Pair], subgoals: dict[str, Subgoal], methods: list[str],
        values_out: dict | None = None) -> list[dict]:
    """Evaluate each method on ``pairs`` with ``judge`` (a MemoJudge); one result dict per method.

    ``values_out``, when given, receives every method's values: ``{method: {(sample_id, subgoal_id): value}}``.
    """
    results = []
    for method in methods:
        judge.take_usage()
        values = score_pairs(judge, pairs, subgoals, method)
        spent, shares = judge.take_usage()
        if values_out is not None:
            values_out[method] = values
        results.append({"method": method, **evaluate(pairs, values), "s_per_pair": _r(spent / len(pairs), 4),
                        "digit_share": share_stats(shares)})
        print(f"bench_judge: {json.dumps(results[-1])}", file=sys.stderr)  # progress; the result line is stdout's
    return results


def write_pair_values(path: Path, judge: MemoJudge, pairs: list[Pair], subgoals: dict[str, Subgoal],
                      values: dict[str, dict]) -> None:
    """One JSON line per pair: its label, every method's value, and the digit share of its plain judgement (the
    subgoal as written, default prompt). The rows hold the pair's text: keep the file outside the repo (licences)."""
    with open(path, "w", encoding="utf-8") as fh:
        for p in pairs:
            key = (p.sample_id, p.subgoal_id)
            fh.write(json.dumps({"sample_id": p.sample_id, "subgoal_id": p.subgoal_id, "label": p.label,
                                 "target": p.target, "adds": bool(p.meta.get("adds")),
                                 "values": {m: _r(v.get(key), 4) for m, v in values.items()},
                                 "digit_share": _r(judge.share(p.text, subgoals[p.subgoal_id]), 4)}) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Judge validity benchmark (prints one JSON line).")
    parser.add_argument("--model", default="embedded", help="embedded | HF id | model folder | .gguf file")
    parser.add_argument("--mode", choices=("generate", "logprobs"), default="logprobs")
    parser.add_argument("--engine", choices=("transformers", "llamacpp"), default="transformers",
                        help="llamacpp: a .gguf (or embedded) through llama.cpp, needs goalcover_hf[llamacpp]")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads of the engine (default: transformers GOALCOVER_THREADS or all cores, "
                             "llama.cpp all cores; on a shared machine give fewer than the free cores)")
    parser.add_argument("--method", default=None,
                        help=f"comma list of methods ({', '.join(judging.METHODS)}; suffix +cal or +calx to "
                             "calibrate) or 'all'; default: score (generate) / expected (logprobs)")
    parser.add_argument("--limit", type=int, default=None, help="at most N pairs (whole sample groups, all domains)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--cache", type=Path, help="JSON-lines file of judgements to reuse and extend across runs "
                                                       "(same model and mode); keep it outside the repo")
    parser.add_argument("--data", type=Path, help="folder of the external jsonl files (default ../shared/data/external)")
    parser.add_argument("--pairs-out", type=Path, help="also write one JSON line per pair: label, each method's "
                        "value, digit share (keep it outside the repo)")
    args = parser.parse_args(argv)
    if args.data:
        os.environ["GOALCOVER_EXTERNAL_DATA"] = str(args.data)
    methods = expand_methods(args.method or ("score" if args.mode == "generate" else "expected"), args.mode)

    from goalcover_hf.scorer import Scorer

    all_pairs, entries = build_pairs(seed=args.seed)
    pairs = limit_pairs(all_pairs, args.limit)
    missing = lacking(pairs, [e["id"] for e in entries])
    if missing:
        print(f"bench_judge: with --limit {args.limit}, these subgoals lack a label (no AUC for them): "
              + "; ".join(f"{s}: no {' or '.join(m)}" for s, m in missing.items()), file=sys.stderr)
    subgoals = {e["id"]: to_subgoal(e) for e in entries}
    spec = GoalSpec(goal="Judge validity benchmark", subgoals=list(subgoals.values()))
    # no pair cache: a judgement read back from it would cost ~0 s and falsify s/pair (--cache keeps the seconds)
    options = dict(mode=args.mode, explain="none", batch_size=args.batch_size, cache=False)
    loader = Scorer(spec, args.model, engine=args.engine,
                    engine_options={"threads": args.threads} if args.threads else None, **options)
    start = time.perf_counter()
    recorder = ShareRecorder(loader.engine, loader.counter)  # load before timing: s/pair exclude the model load
    load_s = time.perf_counter() - start
    if not recorder.raw:
        print(f"bench_judge: digit shares not recorded: this needs {RAW_SHARE_NEED}", file=sys.stderr)
    scorer = Scorer(spec, engine=recorder, **options)
    start = time.perf_counter()
    judge = MemoJudge(scorer.raw, args.cache, recorder)
    values: dict[str, dict] = {}
    results = run(judge, pairs, subgoals, methods, values)
    if args.pairs_out:
        write_pair_values(args.pairs_out, judge, pairs, subgoals, values)
    counts = summary(pairs)
    print(json.dumps({
        "benchmark": "judge_validity",
        "model": args.model,
        "model_identity": scorer.config.model_identity,
        "engine": args.engine,
        "threads": args.threads,
        "mode": args.mode,
        "seed": args.seed,
        "limit": args.limit,
        "pairs": counts["pairs"],
        "positives": counts["positives"],
        "corrupted_samples": counts["corrupted_samples"],
        "by_subgoal": subgoal_counts(pairs),
        "lacking": missing,
        "digit_share": "recorded" if recorder.raw else f"unavailable: needs {RAW_SHARE_NEED}",
        "load_s": round(load_s, 1),
        "wall_s": round(time.perf_counter() - start, 1),
        "results": results,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
