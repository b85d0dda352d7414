"""Labelled (sample, subgoal, label) pairs for measuring judge validity, built from real rows whose truth a program checks.

The rows come from ``../shared/data/external`` (read by path, never copied: see its SOURCES.md for licences): MedQuAD
and PubMedQA (medical QA), legal ToS summaries, HumanEval (code), ECTSum (financial summaries). Each subgoal in
``judge_subgoals.yaml`` names a labelling function (``check``) applied to the sample's output part (answer, summary,
code) and, where one exists, a corruption (``corrupt``) that removes exactly that property. A corrupted copy is kept
only if re-checking it flips the target label and no other label of its domain, so target vs non-target score drops
measure selectivity. Everything is seeded: the same seed gives the same pairs.

Usage:
    python benchmarks/judge_pairs.py [--seed 0] [--out pairs.jsonl]   # prints one JSON line of counts
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import yaml

HERE = Path(__file__).resolve().parent
SUBGOALS_FILE = HERE / "judge_subgoals.yaml"
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "external"
DOMAINS = ("medical", "legal", "code", "financial")
INPUT_CHARS = 400  # inputs (ToS excerpt, call transcript) are cut: the judged part is the output, prompts stay short


def data_dir() -> Path:
    return Path(os.environ.get("GOALCOVER_EXTERNAL_DATA", DEFAULT_DATA))


# ---- labelling functions: output text -> bool --------------------------------------------------------------------
DRUGS = sorted({
    "acetaminophen", "paracetamol", "ibuprofen", "naproxen", "aspirin", "diclofenac", "celecoxib", "morphine",
    "codeine", "oxycodone", "tramadol", "fentanyl", "methadone", "buprenorphine", "naloxone", "metformin", "insulin",
    "glipizide", "sitagliptin", "liraglutide", "semaglutide", "levothyroxine", "prednisone", "prednisolone",
    "hydrocortisone", "dexamethasone", "methylprednisolone", "cortisone", "lisinopril", "enalapril", "losartan",
    "valsartan", "amlodipine", "nifedipine", "metoprolol", "atenolol", "propranolol", "carvedilol", "furosemide",
    "hydrochlorothiazide", "spironolactone", "digoxin", "amiodarone", "warfarin", "heparin", "enoxaparin",
    "clopidogrel", "apixaban", "rivaroxaban", "atorvastatin", "simvastatin", "rosuvastatin", "statin", "statins",
    "amoxicillin", "penicillin", "ampicillin", "azithromycin", "doxycycline", "ciprofloxacin", "levofloxacin",
    "vancomycin", "cephalosporin", "ceftriaxone", "metronidazole", "clindamycin", "rifampin", "isoniazid",
    "acyclovir", "valacyclovir", "oseltamivir", "zidovudine", "tenofovir", "ribavirin", "interferon", "fluconazole",
    "itraconazole", "chloroquine", "hydroxychloroquine", "ivermectin", "albendazole", "omeprazole", "pantoprazole",
    "ranitidine", "loperamide", "ondansetron", "sertraline", "fluoxetine", "paroxetine", "citalopram",
    "escitalopram", "venlafaxine", "bupropion", "amitriptyline", "lithium", "haloperidol", "risperidone",
    "olanzapine", "quetiapine", "clozapine", "diazepam", "lorazepam", "alprazolam", "midazolam", "zolpidem",
    "methylphenidate", "amphetamine", "levodopa", "carbidopa", "donepezil", "memantine", "gabapentin",
    "pregabalin", "carbamazepine", "phenytoin", "valproate", "lamotrigine", "levetiracetam", "topiramate",
    "botulinum", "methotrexate", "cyclophosphamide", "cisplatin", "carboplatin", "doxorubicin", "paclitaxel",
    "tamoxifen", "imatinib", "rituximab", "trastuzumab", "bevacizumab", "cyclosporine", "tacrolimus",
    "azathioprine", "infliximab", "adalimumab", "etanercept", "allopurinol", "colchicine", "epinephrine",
    "adrenaline", "albuterol", "salbutamol", "montelukast", "budesonide", "fluticasone", "antihistamine",
    "antihistamines", "cetirizine", "loratadine", "diphenhydramine", "sildenafil", "estrogen", "progesterone",
    "testosterone", "oxytocin", "misoprostol", "magnesium sulfate", "propofol", "ketamine", "lidocaine",
    "bupivacaine", "sevoflurane", "dopamine", "norepinephrine", "vasopressin", "nitroglycerin", "tranexamic acid",
    "erythropoietin", "iron supplements", "folic acid", "vitamin k", "penicillamine", "deferoxamine", "dantrolene",
    "baclofen", "tetrabenazine", "riluzole", "enzyme replacement therapy", "chemotherapy drugs", "antibiotics",
})
_DRUG = re.compile(r"\b(" + "|".join(re.escape(d) for d in sorted(DRUGS, key=len, reverse=True)) + r")\b", re.I)
_DIGIT = re.compile(r"\d")
_PROFESSIONAL = re.compile(
    r"\b((your|a|the|their)\s+)?(doctors?|physicians?|health\s?care (providers?|professionals?|team)|"
    r"health professionals?|nurses?|pharmacists?|specialists?|surgeons?|pediatricians?|neurologists?|"
    r"cardiologists?|oncologists?|dermatologists?|geneticists?|genetic counselors?|clinicians?)\b", re.I)
_YOU = re.compile(r"\b(you|your|yours|yourself|yourselves)\b", re.I)
_TERMINATION = re.compile(r"\b(terminat\w*|suspend\w*|suspension|cancel\w*|delet\w*|remov\w*|ban|bans|banned|"
                          r"clos(e|es|ed|ing) (your|the|an|any) (account|service))\b", re.I)
_CURRENCY = re.compile(
    r"([$€£¥]\s?\d[\d,]*(\.\d+)?(\s?(million|billion|thousand|trillion|mln|bln|mm|m|b|k)\b)?)|"
    r"(\b\d[\d,]*(\.\d+)?\s?(million |billion )?(dollars|usd|euros?|yen)\b)", re.I)
_PERCENT = re.compile(r"\b\d[\d,]*(\.\d+)?\s?(%|percent\b|pct\b|per cent\b)", re.I)


def names_drug(text: str) -> bool:
    return bool(_DRUG.search(text))


def has_number(text: str) -> bool:
    return bool(_DIGIT.search(text))


def mentions_professional(text: str) -> bool:
    return bool(_PROFESSIONAL.search(text))


def addresses_reader(text: str) -> bool:
    return bool(_YOU.search(text))


def sentences(text: str) -> list[str]:
    """Split on sentence-ending punctuation followed by space or the end (decimals like 2.5 stay whole)."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|(?<=[.!?])$", text.strip()) if s and s.strip(" .!?")]


def one_sentence(text: str) -> bool:
    return len(sentences(text)) == 1


def mentions_termination(text: str) -> bool:
    return bool(_TERMINATION.search(text))


def has_currency(text: str) -> bool:
    return bool(_CURRENCY.search(text))


def has_percentage(text: str) -> bool:
    return bool(_PERCENT.search(text))


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def at_most_three_lines(text: str) -> bool:
    return 1 <= len(lines(text)) <= 3


def _functions(code: str) -> list[ast.FunctionDef]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def has_docstring(code: str) -> bool:
    return any((ast.get_docstring(f) or "").strip() for f in _functions(code))


def has_type_hints(code: str) -> bool:
    return any(f.returns is not None or any(a.annotation is not None for a in _all_args(f)) for f in _functions(code))


def has_doctest(code: str) -> bool:
    return any(re.search(r"^\s*>>>", ast.get_docstring(f) or "", re.M) for f in _functions(code))


def _all_args(f) -> list[ast.arg]:
    a = f.args
    return [*a.posonlyargs, *a.args, *a.kwonlyargs, *([a.vararg] if a.vararg else []), *([a.kwarg] if a.kwarg else [])]


# ---- corruptions: Sample -> candidate outputs (the builder keeps the first that flips only the target) -----------
def _sub_all(pattern: re.Pattern, repl: str, text: str) -> list[str]:
    out = pattern.sub(repl, text)
    return [out] if out != text else []


def drop_drugs(s: "Sample") -> list[str]:
    return _sub_all(_DRUG, "a medication", s.output)


def drop_professionals(s: "Sample") -> list[str]:
    return _sub_all(_PROFESSIONAL, "someone", s.output)


def _drop_sentences(text: str, test: Callable[[str], bool]) -> list[str]:
    kept = [x for x in sentences(text) if not test(x)]
    return [" ".join(kept)] if kept and len(kept) < len(sentences(text)) else []


def drop_number_sentences(s: "Sample") -> list[str]:
    return _drop_sentences(s.output, has_number)


_THIRD_PERSON = [
    (r"\byou re\b", "users are"), (r"\byou ve\b", "users have"), (r"\byou ll\b", "users will"),
    (r"\byou d\b", "users would"), (r"\byou are\b", "users are"), (r"\byou were\b", "users were"),
    (r"\byou have\b", "users have"), (r"\byou has\b", "users have"), (r"\byourselves\b", "themselves"),
    (r"\byourself\b", "themselves"), (r"\byours\b", "theirs"), (r"\byour\b", "their"), (r"\byou\b", "users"),
]


def third_person(s: "Sample") -> list[str]:
    out = s.output
    for pattern, repl in _THIRD_PERSON:
        out = re.sub(pattern, repl, out, flags=re.I)
    return [out] if out != s.output else []


def append_input_sentence(s: "Sample") -> list[str]:
    base = s.output.strip()
    base = base if base.endswith((".", "!", "?")) else base + "."
    return [f"{base} {x}" for x in sentences(s.input_full) if 20 <= len(x) <= 200][:8]


def drop_currency(s: "Sample") -> list[str]:
    return _sub_all(_CURRENCY, "an undisclosed amount", s.output)


def drop_percentages(s: "Sample") -> list[str]:
    return _sub_all(_PERCENT, "an undisclosed percentage", s.output)


def append_input_lines(s: "Sample") -> list[str]:
    need = 4 - len(lines(s.output))
    doc = [x.strip().lower() for x in lines(s.input_full) if 20 <= len(x.strip()) <= 160]
    return ["\n".join([s.output.rstrip(), *doc[k : k + need]]) for k in range(0, max(0, len(doc) - need), need)][:8]


def _offset(src_lines: list[str], lineno: int, col: int) -> int:
    """Character offset of an ast (line, utf-8 byte column) position."""
    before = sum(len(x) for x in src_lines[: lineno - 1])
    return before + len(src_lines[lineno - 1].encode()[:col].decode())


def _cut(code: str, spans: list[tuple[int, int]]) -> str:
    for start, end in sorted(spans, reverse=True):
        code = code[:start] + code[end:]
    return code


def drop_type_hints(s: "Sample") -> list[str]:
    code = s.output
    src = code.splitlines(keepends=True)
    spans = []
    for f in _functions(code):
        for a in _all_args(f):
            if a.annotation is not None:
                start = _offset(src, a.lineno, a.col_offset) + len(a.arg)
                spans.append((start, _offset(src, a.annotation.end_lineno, a.annotation.end_col_offset)))
        if f.returns is not None:
            end = _offset(src, f.returns.end_lineno, f.returns.end_col_offset)
            arrow = code.rfind("->", 0, _offset(src, f.returns.lineno, f.returns.col_offset))
            start = len(code[:arrow].rstrip())
            spans.append((start, end))
    out = _cut(code, spans)
    return [out] if spans and _functions(out) else []


def _docstring_nodes(code: str) -> list[ast.Expr]:
    out = []
    for f in _functions(code):
        first = f.body[0] if f.body else None
        if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) and isinstance(
            first.value.value, str
        ):
            out.append(first)
    return out


def drop_docstrings(s: "Sample") -> list[str]:
    code = s.output
    src = code.splitlines(keepends=True)
    drop = set()
    for node in _docstring_nodes(code):
        drop.update(range(node.lineno - 1, node.end_lineno))
    out = "".join(x for k, x in enumerate(src) if k not in drop)
    return [out] if drop and _functions(out) else []


def drop_doctests(s: "Sample") -> list[str]:
    """Remove every ``>>>`` example line (and its continuation and expected-output lines) from the docstrings."""
    code = s.output
    src = code.splitlines(keepends=True)
    drop = set()
    for node in _docstring_nodes(code):
        k, last = node.lineno - 1, node.end_lineno - 1
        in_example = False
        while k <= last:
            stripped = src[k].strip()
            closes = k == last or stripped.endswith(('"""', "'''"))
            if stripped.startswith(">>>"):
                in_example = True
            elif not stripped or closes:
                in_example = False
            if in_example and not closes:
                drop.add(k)
            k += 1
    out = "".join(x for k, x in enumerate(src) if k not in drop)
    return [out] if drop and _functions(out) else []


CHECKS: dict[str, Callable[[str], bool]] = {f.__name__: f for f in (
    names_drug, has_number, mentions_professional, addresses_reader, one_sentence, mentions_termination,
    has_docstring, has_type_hints, has_doctest, has_currency, has_percentage, at_most_three_lines)}
CORRUPTIONS: dict[str, Callable[["Sample"], list[str]]] = {f.__name__: f for f in (
    drop_drugs, drop_number_sentences, drop_professionals, third_person, append_input_sentence, drop_docstrings,
    drop_type_hints, drop_doctests, drop_currency, drop_percentages, append_input_lines)}


# ---- samples and pairs ----------------------------------------------------------------------------------------------
@dataclass
class Sample:
    """One fine-tuning sample: ``input`` (shown cut to INPUT_CHARS) and ``output`` (the part the subgoals judge)."""

    id: str
    domain: str
    output: str
    input_full: str = ""
    input_label: str = ""
    output_label: str = ""
    corrupted_from: str | None = None
    target: str | None = None  # subgoal whose property the corruption removed

    @property
    def text(self) -> str:
        if not self.input_full:
            return self.output
        shown = self.input_full if len(self.input_full) <= INPUT_CHARS else self.input_full[:INPUT_CHARS] + " [...]"
        return f"{self.input_label}:\n{shown}\n\n{self.output_label}:\n{self.output}"


@dataclass
class Pair:
    sample_id: str
    domain: str
    subgoal_id: str
    label: int
    text: str
    group: str  # the original sample's id: an original and its corruptions share a group
    target: str | None = None  # set on corrupted samples
    meta: dict = field(default_factory=dict)


def load_subgoals(path: Path = SUBGOALS_FILE) -> list[dict]:
    """The benchmark's subgoal entries (dicts with domain/check/corrupt plus the Subgoal fields)."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))["subgoals"]
    for e in entries:
        if e["check"] not in CHECKS or (e["corrupt"] and e["corrupt"] not in CORRUPTIONS):
            raise ValueError(f"{path}: subgoal {e['id']}: unknown check or corrupt function")
    return entries


def to_subgoal(entry: dict):
    from goalcover_hf.spec import Subgoal

    return Subgoal(**{k: entry[k] for k in ("id", "name", "description", "low", "high")})


def _jsonl(name: str) -> list[dict]:
    path = data_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: benchmark data not found (set GOALCOVER_EXTERNAL_DATA or pass --data)")
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_samples() -> dict[str, list[Sample]]:
    """Candidate samples per domain, from the external rows, kept short enough for a CPU judge."""
    med = [Sample(r["id"], "medical", r["answer"].strip(), r["question"], "Question", "Answer")
           for r in _jsonl("medical_qa_medquad.jsonl") if len(r["answer"]) <= 700]
    med += [Sample(r["id"], "medical", r["LONG_ANSWER"].strip(), r["QUESTION"], "Question", "Answer")
            for r in _jsonl("medical_qa.jsonl") if len(r["LONG_ANSWER"]) <= 700]
    legal = [Sample(r["id"], "legal", r["reference_summary"].strip(), r["original_text"], "Terms of service excerpt",
                    "Plain-English summary")
             for r in _jsonl("legal_summarization.jsonl") if len(r["reference_summary"]) >= 25]
    code = [Sample(r["id"], "code", r["prompt"] + r["canonical_solution"]) for r in _jsonl("code_generation.jsonl")
            if len(r["prompt"] + r["canonical_solution"]) <= 1000]
    fin = [Sample(r["id"], "financial", r["summary"].strip(), r["document"], "Earnings call transcript (start)",
                  "Summary")
           for r in _jsonl("financial_summarization.jsonl") if len(r["summary"]) <= 700]
    return {"medical": med, "legal": legal, "code": code, "financial": fin}


def labels(sample: Sample, entries: list[dict]) -> dict[str, int]:
    return {e["id"]: int(CHECKS[e["check"]](sample.output)) for e in entries}


def build_pairs(seed: int = 0, per_label: int = 5, corruptions: int = 5) -> tuple[list[Pair], list[dict]]:
    """Pairs for every domain: for each subgoal up to ``per_label`` samples with and without the property (natural),
    every chosen sample paired with all subgoals of its domain, plus up to ``corruptions`` corrupted copies per
    subgoal (each paired with all subgoals of its domain). Returns (pairs, subgoal entries)."""
    entries = load_subgoals()
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for domain, candidates in load_samples().items():
        subs = [e for e in entries if e["domain"] == domain]
        pool = list(candidates)
        rng.shuffle(pool)
        chosen: list[Sample] = []
        for e in subs:  # stratify: natural positives and negatives for every subgoal
            for want in (1, 0):
                have = sum(labels(s, [e])[e["id"]] == want for s in chosen)
                for s in pool:
                    if have >= per_label:
                        break
                    if s not in chosen and labels(s, [e])[e["id"]] == want:
                        chosen.append(s)
                        have += 1
        corrupted: list[Sample] = []
        for e in subs:
            if not e["corrupt"]:
                continue
            made = 0
            for s in chosen:
                if made >= corruptions:
                    break
                before = labels(s, subs)
                if not before[e["id"]]:
                    continue
                for out in CORRUPTIONS[e["corrupt"]](s):
                    c = Sample(f"{s.id}~{e['id']}", domain, out, s.input_full, s.input_label, s.output_label,
                               corrupted_from=s.id, target=e["id"])
                    after = labels(c, subs)
                    if [k for k in after if after[k] != before[k]] == [e["id"]]:  # exactly the target flipped
                        corrupted.append(c)
                        made += 1
                        break
        for s in chosen + corrupted:
            for e, label in zip(subs, labels(s, subs).values()):
                pairs.append(Pair(s.id, domain, e["id"], label, s.text, s.corrupted_from or s.id, s.target))
    return pairs, entries


def limit_pairs(pairs: list[Pair], limit: int | None) -> list[Pair]:
    """At most ``limit`` pairs, taking whole groups (an original with its corruptions) round-robin over domains."""
    if not limit or limit >= len(pairs):
        return pairs
    groups: dict[str, dict[str, list[Pair]]] = {}
    for p in pairs:
        groups.setdefault(p.domain, {}).setdefault(p.group, []).append(p)
    queues = {d: list(g.values()) for d, g in groups.items()}
    # groups with corruptions first (selectivity needs them), the smallest of those first (more groups fit)
    for q in queues.values():
        q.sort(key=lambda g: (not any(p.target for p in g), len(g)))
    out: list[Pair] = []
    while any(queues.values()):
        for d in list(queues):
            if queues[d]:
                group = queues[d].pop(0)
                if len(out) + len(group) > limit:
                    queues[d] = []  # this domain is done; others may still fit a group
                    continue
                out.extend(group)
    return out


def summary(pairs: list[Pair]) -> dict:
    by = Counter((p.domain, p.label) for p in pairs)
    return {
        "pairs": len(pairs),
        "positives": sum(p.label for p in pairs),
        "samples": len({p.sample_id for p in pairs}),
        "corrupted_samples": len({p.sample_id for p in pairs if p.target}),
        "by_domain": {d: {"pos": by[(d, 1)], "neg": by[(d, 0)]} for d in DOMAINS},
        "by_subgoal": {s: {"pos": sum(p.label for p in pairs if p.subgoal_id == s),
                           "neg": sum(1 - p.label for p in pairs if p.subgoal_id == s)}
                       for s in dict.fromkeys(p.subgoal_id for p in pairs)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the judge validity pairs; print one JSON line of counts.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, help="folder of the external jsonl files (default ../shared/data/external)")
    parser.add_argument("--out", type=Path, help="also write the pairs as JSON lines (outside the repo: licences)")
    args = parser.parse_args(argv)
    if args.data:
        os.environ["GOALCOVER_EXTERNAL_DATA"] = str(args.data)
    pairs, _ = build_pairs(seed=args.seed)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            for p in pairs:
                fh.write(json.dumps(asdict(p)) + "\n")
    print(json.dumps({"seed": args.seed, **summary(pairs)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
