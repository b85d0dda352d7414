"""Labelled (sample, subgoal, label) pairs for measuring judge validity, built from real rows whose truth a program checks.

The rows come from ``../shared/data/external`` (read by path, never copied: see its SOURCES.md for licences): MedQuAD
and PubMedQA (medical QA), legal ToS summaries, HumanEval (code), ECTSum (financial summaries). Each subgoal in
``judge_subgoals.yaml`` names a labelling function (``check``) and, where one exists, a controlled variant
(``corrupt``) that changes exactly that property.

A label is 1 when the sample's output part (answer, summary, code) certainly shows the property, and 0 only when
nothing the judge reads (the question or excerpt shown with it included) might show it; everything in between is
left out. Open-ended properties (a drug is named, a number is stated) are decided by a closed list for the positives
and by a deliberately broad rule for "might" (drug-like word endings, any digit or number word, ...), so an
uncertain row is excluded rather than mislabelled. A variant is kept only if re-checking it changes the target label
and no other label of its domain. Variants never put a word in place of what they remove (they drop whole
sentences or lines), and the brevity variants keep every word (they only join sentences or lines), so the judge
cannot tell the two texts apart by their content or quality. Everything is seeded: the same seed gives the same pairs.

Usage:
    python benchmarks/judge_pairs.py [--seed 0] [--limit N] [--out pairs.jsonl]   # prints one JSON line of counts
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
DOMAINS = ("medical", "legal", "code", "financial")
INPUT_CHARS = 400  # inputs (ToS excerpt, call transcript) are cut: the judged part is the output, prompts stay short


def _default_data() -> Path:
    # the repository's sibling shared/ folder, also from a git worktree nested deeper than the main checkout
    for parent in HERE.parents:
        if (parent / "shared" / "data" / "external").is_dir():
            return parent / "shared" / "data" / "external"
    return HERE.parent.parent / "shared" / "data" / "external"


DEFAULT_DATA = _default_data()


def data_dir() -> Path:
    return Path(os.environ.get("GOALCOVER_EXTERNAL_DATA", DEFAULT_DATA))


def _words(*words: str) -> re.Pattern:
    return re.compile(r"\b(" + "|".join(sorted(words, key=len, reverse=True)) + r")\b", re.I)


# ---- medical: drugs ---------------------------------------------------------------------------------------------
# Specific drug names only: a match makes a positive. Hormones, vitamins and other substances the body makes
# (insulin, dopamine, estrogen, lithium, iron) and drug classes (statins, antibiotics) are not here: a text naming
# only those may or may not "name a medication", so it is left out of both labels (see MAYBE_DRUG).
DRUGS = sorted({
    "acetaminophen", "paracetamol", "ibuprofen", "naproxen", "aspirin", "diclofenac", "celecoxib", "morphine",
    "codeine", "oxycodone", "tramadol", "fentanyl", "methadone", "buprenorphine", "naloxone", "metformin",
    "glipizide", "sitagliptin", "liraglutide", "semaglutide", "levothyroxine", "prednisone", "prednisolone",
    "hydrocortisone", "dexamethasone", "methylprednisolone", "lisinopril", "enalapril", "losartan",
    "valsartan", "amlodipine", "nifedipine", "metoprolol", "atenolol", "propranolol", "carvedilol", "furosemide",
    "hydrochlorothiazide", "spironolactone", "digoxin", "amiodarone", "warfarin", "heparin", "enoxaparin",
    "clopidogrel", "apixaban", "rivaroxaban", "atorvastatin", "simvastatin", "rosuvastatin",
    "amoxicillin", "penicillin", "ampicillin", "azithromycin", "doxycycline", "ciprofloxacin", "levofloxacin",
    "vancomycin", "ceftriaxone", "metronidazole", "clindamycin", "rifampin", "isoniazid",
    "acyclovir", "valacyclovir", "oseltamivir", "zidovudine", "tenofovir", "ribavirin", "fluconazole",
    "itraconazole", "chloroquine", "hydroxychloroquine", "ivermectin", "albendazole", "omeprazole", "pantoprazole",
    "ranitidine", "loperamide", "ondansetron", "sertraline", "fluoxetine", "paroxetine", "citalopram",
    "escitalopram", "venlafaxine", "bupropion", "amitriptyline", "haloperidol", "risperidone",
    "olanzapine", "quetiapine", "clozapine", "diazepam", "lorazepam", "alprazolam", "midazolam", "zolpidem",
    "methylphenidate", "amphetamine", "levodopa", "carbidopa", "donepezil", "memantine", "gabapentin",
    "pregabalin", "carbamazepine", "phenytoin", "valproate", "lamotrigine", "levetiracetam", "topiramate",
    "methotrexate", "cyclophosphamide", "cisplatin", "carboplatin", "doxorubicin", "paclitaxel",
    "tamoxifen", "imatinib", "rituximab", "trastuzumab", "bevacizumab", "cyclosporine", "tacrolimus",
    "azathioprine", "infliximab", "adalimumab", "etanercept", "allopurinol", "colchicine",
    "albuterol", "salbutamol", "montelukast", "budesonide", "fluticasone",
    "cetirizine", "loratadine", "diphenhydramine", "sildenafil", "misoprostol", "propofol", "ketamine", "lidocaine",
    "bupivacaine", "sevoflurane", "nitroglycerin", "tranexamic acid", "penicillamine", "deferoxamine",
    "dantrolene", "baclofen", "tetrabenazine", "riluzole", "atropine", "fluorouracil", "mitoxantrone", "fenofibrate",
    "ergocalciferol", "isoproterenol", "cyclosporin",
})
_DRUG = _words(*(re.escape(d) for d in DRUGS))
# Words that may name a medication without being on the list: drug classes and substances, INN-like endings
# (-ine, -ol, -mab, -pril, ...), brand-name marks. Deliberately broad: a false alarm only drops a row from the
# negatives. _NOT_DRUGS lists frequent words with those endings that certainly name no drug, to keep enough rows.
_DRUG_CLASS = _words(
    r"drugs?", r"medications?", r"medicines?", r"medicated", r"pills?", r"tablets?", r"capsules?", r"doses?",
    r"dosages?", r"prescri\w*", r"antibiotics?", r"antivirals?", r"antifungals?", r"antidepressants?",
    r"antipsychotics?", r"anticoagulants?", r"antihistamines?", r"anti-?\w+", r"statins?", r"steroids?",
    r"corticosteroids?", r"vaccines?", r"vaccinat\w*", r"immunizations?", r"chemotherap\w*", r"supplements?",
    r"inhibitors?", r"blockers?", r"agonists?", r"antagonists?", r"analgesics?", r"opioids?", r"opiates?",
    r"sedatives?", r"sedation", r"anesthe\w*", r"anaesthe\w*", r"hormones?", r"vitamins?", r"insulin", r"iron",
    r"lithium", r"interferons?", r"toxins?", r"injections?", r"infusions?", r"ointments?", r"creams?", r"sprays?",
    r"inhalers?", r"patch(es)?", r"placebo", r"pharmac\w*", r"narcotics?", r"alcohol", r"nicotine",
    r"caffeine", r"cocaine", r"heroin", r"cannabis", r"marijuana", r"NSAIDs?", r"SSRIs?", r"SNRIs?", r"MAOIs?",
    r"PPIs?", r"ACE", r"ARBs?", r"IVIG", r"MTX", r"BCG", r"tPA", r"5-FU", r"therap(y|ies)", r"treatments?",
    r"regimens?", r"agents?", r"compounds?", r"substances?",
)
_DRUG_LIKE = re.compile(
    r"\b[a-z]{2,}(ine|in|ol|ide|one|ate|am|il|an|en|ex|ax|ix|ox|yl|um|mab|nib|vir|pril|sartan|azole|cycline|cillin|"
    r"mycin|floxacin|statin|prazole|tidine|setron|triptan|caine|profen|parin|platin|rubicin|taxel|lukast|gliptin|"
    r"glitazone|formin|afil|ase)s?\b", re.I)
# brand names follow no naming rule: a capitalized word inside a sentence (Lipitor, Tylenol) may be one
_BRAND_MARK = re.compile(r"[®™]|(?<=[a-z0-9,;:(] )[A-Z][a-z]{2,}|\(\s*[A-Z][a-z]+")
_NOT_DRUGS = frozenset("""
between than when women woman children often open even given seen been taken then mean means main pain brain
human within routine control certain origin remains again against began plain explain obtain contain sustain maintain
domain domains gain gains stain chain train rain vein protein proteins toxin determine examine combine define decline
engine examine famine genuine feminine masculine discipline guideline guidelines baseline deadline timeline outline
online line lines underline pipeline decline medicine medicines telemedicine urine uterine intrauterine intestine
intestines endocrine canine bovine murine porcine equine marine spine doctrine shine fine mine nine wine pine alpine
define cuisine magazine machine machines indicate indicates demonstrate demonstrates demonstrated appropriate
adequate inadequate moderate correlate estimate estimates underestimate underestimates rate rates late date state
states create educate locate operate participate accurate immediate translate illustrate facilitate validate
elucidate discriminate exacerbate investigate eliminate eliminates accommodate compassionate debate fate gate
prostate climate ultimate separate private accurate approximate delicate update updates relate relates related
tool tools school preschool pool control controls protocol protocols program programs diagram index complex
duplex appendix annex reflex cortex sex box fax tax wax pox mix six fix alone phone stone stones bone bones done
none tone zone someone anyone everyone ozone postpone hormone provide provides side wide bedside alongside
worldwide guide slide decide reside inside outside suicide ride pride dioxide exam scan scans program problem
team teams stream cream dream item system spectrum medium premium forum album platinum vacuum serum sputum museum
pupil pupils until april retail detail details oil soil fossil council civil evil pencil profile
american european african africans asian caucasian christian muslim indian canadian italian korean ovarian
cesarean median guardian veteran orphan urban woman women often open even seven eleven given driven oxygen
glycogen burden frozen screen screens kindergarten happen seen green men ten then when chicken kitchen
pathogen pathogens antigen antigens androgen collagen allergen allergens methyl vinyl
also phase phases case cases increase increases decrease decreases disease diseases release releases base
bases database purchase cease lease please chase ease
""".split())


def names_drug(text: str) -> bool:
    """A drug of the list is named (a certain positive)."""
    return bool(_DRUG.search(text))


def might_name_drug(text: str) -> bool:
    """Anything that could be a medication's name: excluded from the negatives."""
    if names_drug(text) or _DRUG_CLASS.search(text) or _BRAND_MARK.search(text):
        return True
    return any(m.group(0).lower() not in _NOT_DRUGS for m in _DRUG_LIKE.finditer(text))


# ---- medical: numbers -------------------------------------------------------------------------------------------
# A number stands alone: no letter or hyphen-joined identifier before it (CA125, pT3, IL-6, COVID-19) and no letter
# right after it (3D, 8p11, 5mg, 1st); "30-day" counts, "5-FU" does not. Years and numbers that name a category
# (type 2, stage 3) are not counts or statistics: they are neither a positive nor a negative.
_NUMBER = re.compile(r"(?<![\w.,/\-])(\d+(?:[.,]\d+)*)(?![\w<>]|[.,]\d|-[A-Z])")
_NAMING = re.compile(r"\b(type|types|grade|stage|phase|class|chromosome|trisomy|factor|level|step|group|version|"
                     r"figure|fig|table|tab|ref|refs|part|section|chapter|model|number|no|code|id|p|pp|vol)\.?\s*$",
                     re.I)
# what makes a standalone number a quantity: a unit or word after it (6 mm, 1 in 2, 50%, 30-day) or a sign before it
# (n = 91, <5); "hyperplasia 2" or "(Tab. 2," name things
_QUANTITY_AFTER = re.compile(r"\s?(%|[a-zµμ°]|-[a-z])")
_QUANTITY_BEFORE = re.compile(r"[=<>≤≥±~]\s?$")
_NUMBER_WORD = _words(
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    r"\w+teen", r"\w+ty", "hundreds?", "thousands?", "millions?", "billions?", "half", "halves", "quarters?",
    "thirds?", "twice", "thrice", "dozens?", "single", "double", "doubled", "triple", "tripled", "once",
    "first", "second", "percent", "percentage", "per cent", "II", "III", "IV", "VI", "VII", "VIII", "IX", "XI", "XII")


def has_number(text: str) -> bool:
    """A standalone number that is a count, measure or statistic (not a year, not part of a name)."""
    for m in _NUMBER.finditer(text):
        n = m.group(1)
        before = text[max(0, m.start() - 24) : m.start()]
        if re.fullmatch(r"(18|19|20)\d\d", n) or _NAMING.search(before):
            continue
        if _QUANTITY_AFTER.match(text, m.end()) or _QUANTITY_BEFORE.search(before):
            return True
    return False


def might_have_number(text: str) -> bool:
    """Any digit (identifiers included) or number word: excluded from the negatives."""
    return bool(re.search(r"\d", text) or _NUMBER_WORD.search(text))


# ---- medical: health professionals ------------------------------------------------------------------------------
_PROFESSIONAL = _words(
    r"doctors?", r"physicians?", r"health\s?care (providers?|professionals?|team|practitioners?)",
    r"health professionals?", r"medical professionals?", r"nurses?", r"pharmacists?", r"specialists?",
    r"surgeons?", r"pediatricians?", r"neurologists?", r"cardiologists?", r"oncologists?", r"dermatologists?",
    r"geneticists?", r"genetic counselors?", r"clinicians?", r"practitioners?", r"general practitioners?",
    r"radiologists?", r"pathologists?", r"psychiatrists?", r"psychologists?", r"ophthalmologists?", r"dentists?",
    r"therapists?", r"midwi(fe|ves)", r"obstetricians?", r"gynecologists?", r"anesthetists?",
    r"anesthesiologists?", r"endoscopists?", r"paramedics?", r"dietitians?",
)
# Words that may refer to care staff without being on the list: any -ist/-ian, staff and team words, places of care.
_MAYBE_PROFESSIONAL = _words(
    r"\w+ists?", r"\w+ians?", r"\w+ologists?", r"staff", r"personnel", r"providers?", r"professionals?",
    r"experts?", r"teams?", r"counsel+ors?", r"workers?", r"caregivers?", r"carers?", r"consultants?",
    r"residents?", r"interns?", r"fellows?", r"attendings?", r"GPs?", r"MDs?", r"RNs?", r"medics?", r"aides?",
    r"hospitals?", r"clinics?", r"emergency", r"consult\w*", r"referr\w*", r"refer", r"care", r"healthcare",
    r"medical", r"team", r"operat\w*", r"surgery", r"surgical",
)


def mentions_professional(text: str) -> bool:
    return bool(_PROFESSIONAL.search(text))


def might_mention_professional(text: str) -> bool:
    return bool(mentions_professional(text) or _MAYBE_PROFESSIONAL.search(text))


# ---- legal ------------------------------------------------------------------------------------------------------
_YOU = _words("you", "your", "yours", "yourself", "yourselves")
# the data is lower-cased with apostrophes removed ("you re"); "u"/"ur" and imperatives may address the reader too
_MAYBE_YOU = _words("u", "ur", "please", "don t", "do not", "make sure", "be aware", "note that", "keep in mind")
_TERMINATION = re.compile(r"\b(terminat\w*|suspend\w*|suspension|cancel\w*|delet\w*|remov\w*|ban|bans|banned|"
                          r"clos(e|es|ed|ing) (your|the|an|any) (account|service))\b", re.I)
_MAYBE_TERMINATION = _words(r"clos\w*", r"end", r"ends", r"ended", r"ending", r"stop\w*", r"revok\w*",
                            r"revocation", r"disabl\w*", r"block\w*", r"expir\w*", r"withdraw\w*", r"eras\w*",
                            r"purg\w*", r"discontinu\w*", r"kick\w*", r"lock\w*", r"shut\w*", r"wip\w*",
                            r"destroy\w*", r"forfeit\w*", r"deactivat\w*", r"erasure", r"retain\w*", r"retention")
# a period after these does not end a sentence: a text with one cannot be counted exactly
_ABBREVIATION = _words(r"e\.g", r"i\.e", r"etc", r"inc", r"ltd", r"co", r"corp", r"vs", r"no", r"u\.s", r"dr",
                       r"mr", r"mrs", r"ms", r"st", r"jr", r"approx", r"fig", r"e g", r"i e")


def addresses_reader(text: str) -> bool:
    return bool(_YOU.search(text))


def might_address_reader(text: str) -> bool:
    return bool(_YOU.search(text) or _MAYBE_YOU.search(text))


def sentences(text: str) -> list[str]:
    """Split on sentence-ending punctuation followed by space or the end (decimals like 2.5 stay whole)."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|(?<=[.!?])$", text.strip()) if s and s.strip(" .!?")]


def one_sentence(text: str) -> bool:
    return len(sentences(text)) == 1


def sentences_uncertain(text: str) -> bool:
    """An abbreviation or an ellipsis makes the sentence count a guess."""
    return bool(re.search(_ABBREVIATION.pattern + r"\.(?!$)", text, re.I) or "..." in text or "…" in text)


def mentions_termination(text: str) -> bool:
    return bool(_TERMINATION.search(text))


def might_mention_termination(text: str) -> bool:
    return bool(_TERMINATION.search(text) or _MAYBE_TERMINATION.search(text))


# ---- financial --------------------------------------------------------------------------------------------------
_CURRENCY = re.compile(
    r"([$€£¥]\s?\d[\d,]*(\.\d+)?(\s?(million|billion|thousand|trillion|mln|bln|mm|m|b|k)\b)?)|"
    r"(\b\d[\d,]*(\.\d+)?\s?(million |billion )?(dollars|usd|euros?|yen)\b)", re.I)
_PERCENT = re.compile(r"\b\d[\d,]*(\.\d+)?\s?(%|percent\b|pct\b|per cent\b)", re.I)
# Amounts written without a currency sign ("revenue 452.2 million", "eps of 0.83", "17 cents") may be money too.
_MAYBE_MONEY = re.compile(
    r"[$€£¥]|\b(dollars?|usd|eur|euros?|yen|pounds?|cents?|rupees?|rmb|yuan|c\$|us\$)\b|"
    r"\d\s?(million|billion|thousand|trillion|mln|bln|mm|bn|m|b|k)\b|"
    r"\b(revenues?|sales|eps|earnings|income|profits?|loss(es)?|dividends?|cash|ebitda|costs?|prices?|capex|debt|"
    r"ffo|affo|nav|per share|book value|guidance|proceeds|expenses?|spend\w*|budget)\b[^.\n]{0,40}?\d", re.I)
_MAYBE_PERCENT = re.compile(r"%|\b(percent|percentage|per cent|pct|basis points?|bps|bp)\b", re.I)


def has_currency(text: str) -> bool:
    return bool(_CURRENCY.search(text))


def might_have_currency(text: str) -> bool:
    return bool(_CURRENCY.search(text) or _MAYBE_MONEY.search(text))


def has_percentage(text: str) -> bool:
    return bool(_PERCENT.search(text))


def might_have_percentage(text: str) -> bool:
    return bool(_PERCENT.search(text) or _MAYBE_PERCENT.search(text))


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def at_most_three_lines(text: str) -> bool:
    return 1 <= len(lines(text)) <= 3


# ---- code -------------------------------------------------------------------------------------------------------
def _functions(code: str) -> list[ast.FunctionDef]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _all_args(f) -> list[ast.arg]:
    a = f.args
    return [*a.posonlyargs, *a.args, *a.kwonlyargs, *([a.vararg] if a.vararg else []), *([a.kwarg] if a.kwarg else [])]


def has_docstring(code: str) -> bool:
    return any((ast.get_docstring(f) or "").strip() for f in _functions(code))


def has_type_hints(code: str) -> bool:
    return any(f.returns is not None or any(a.annotation is not None for a in _all_args(f)) for f in _functions(code))


def might_have_type_hints(code: str) -> bool:
    """Annotated variables or typing imports read like type hints, though the signature has none."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return "->" in code or "typing" in code
    annotated = any(isinstance(n, ast.AnnAssign) for n in ast.walk(tree))
    return has_type_hints(code) or annotated or bool(_typing_imports(tree))


def has_doctest(code: str) -> bool:
    return any(re.search(r"^\s*>>>", ast.get_docstring(f) or "", re.M) for f in _functions(code))


def might_have_doctest(code: str) -> bool:
    return ">>>" in code


# ---- labels: (output, everything the judge reads) -> 1, 0 or None (left out) -------------------------------------
@dataclass(frozen=True)
class Check:
    """How one property is labelled.

    Args:
        shows: the output certainly has the property (label 1).
        might: the judged text might show the property (applied to the whole judged text, input included):
            such a sample is no negative. None: a property of the output's form, which an input cannot show.
        unsure: the output's form cannot be decided exactly (e.g. an abbreviation in a sentence count): no label.
    """

    shows: Callable[[str], bool]
    might: Callable[[str], bool] | None = None
    unsure: Callable[[str], bool] | None = None

    def label(self, output: str, text: str) -> int | None:
        if self.unsure and self.unsure(output):
            return None
        if self.shows(output):
            return 1
        if self.might and self.might(text):
            return None
        return 0


CHECKS: dict[str, Check] = {
    "names_drug": Check(names_drug, might_name_drug),
    "has_number": Check(has_number, might_have_number),
    "mentions_professional": Check(mentions_professional, might_mention_professional),
    "addresses_reader": Check(addresses_reader, might_address_reader),
    "one_sentence": Check(one_sentence, unsure=sentences_uncertain),
    "mentions_termination": Check(mentions_termination, might_mention_termination),
    "has_docstring": Check(has_docstring),
    "has_type_hints": Check(has_type_hints, might_have_type_hints),
    "has_doctest": Check(has_doctest, might_have_doctest),
    "has_currency": Check(has_currency, might_have_currency),
    "has_percentage": Check(has_percentage, might_have_percentage),
    "at_most_three_lines": Check(at_most_three_lines),
}


# ---- controlled variants: Sample -> candidate (input, output) pairs; the builder keeps the first that changes the
# target label and no other. "Removing" variants drop whole sentences or lines (no replacement text that could name
# what was removed); "adding" ones (brevity) only join sentences or lines, so both texts hold the same words.
def _drop_units(units: list[str], test: Callable[[str], bool], sep: str) -> list[str]:
    kept = [x for x in units if not test(x)]
    return [sep.join(kept)] if kept and len(kept) < len(units) else []


def _drop_sentences(s: "Sample", test: Callable[[str], bool]) -> list[tuple[str, str]]:
    return [(s.input_full, out) for out in _drop_units(sentences(s.output), test, " ")]


def _drop_lines(s: "Sample", test: Callable[[str], bool]) -> list[tuple[str, str]]:
    return [(s.input_full, out) for out in _drop_units(lines(s.output), test, "\n")]


def drop_drug_sentences(s: "Sample") -> list[tuple[str, str]]:
    return _drop_sentences(s, might_name_drug)


def drop_number_sentences(s: "Sample") -> list[tuple[str, str]]:
    return _drop_sentences(s, might_have_number)


def drop_professional_sentences(s: "Sample") -> list[tuple[str, str]]:
    return _drop_sentences(s, might_mention_professional)


def drop_money_lines(s: "Sample") -> list[tuple[str, str]]:
    return _drop_lines(s, might_have_currency)


def drop_percentage_lines(s: "Sample") -> list[tuple[str, str]]:
    return _drop_lines(s, might_have_percentage)


_THIRD_PERSON = [
    (r"\byou re\b", "users are"), (r"\byou ve\b", "users have"), (r"\byou ll\b", "users will"),
    (r"\byou d\b", "users would"), (r"\byou are\b", "users are"), (r"\byou were\b", "users were"),
    (r"\byou have\b", "users have"), (r"\byou has\b", "users have"), (r"\byourselves\b", "themselves"),
    (r"\byourself\b", "themselves"), (r"\byours\b", "theirs"), (r"\byour\b", "their"), (r"\byou\b", "users"),
]


def _third(text: str) -> str:
    for pattern, repl in _THIRD_PERSON:
        text = re.sub(pattern, repl, text, flags=re.I)
    return text


def third_person(s: "Sample") -> list[tuple[str, str]]:
    """The summary and the excerpt shown with it, both in the third person (the excerpt would show "you")."""
    out = _third(s.output)
    return [(_third(s.input_full), out)] if out != s.output else []


def join_sentences(s: "Sample") -> list[tuple[str, str]]:
    """Two or more sentences made one by semicolons: the same words, one sentence."""
    parts = sentences(s.output)
    if len(parts) < 2:
        return []
    return [(s.input_full, "; ".join(p.rstrip(".!?") for p in parts) + ".")]


def join_lines(s: "Sample") -> list[tuple[str, str]]:
    """Four or more lines joined into three: the same words on fewer lines."""
    rows = [x.strip() for x in lines(s.output)]
    if len(rows) < 4:
        return []
    size, extra = divmod(len(rows), 3)
    out, k = [], 0
    for part in range(3):
        n = size + (part < extra)
        out.append(" ".join(rows[k : k + n]))
        k += n
    return [(s.input_full, "\n".join(out))]


def _offset(src_lines: list[str], lineno: int, col: int) -> int:
    """Character offset of an ast (line, utf-8 byte column) position."""
    before = sum(len(x) for x in src_lines[: lineno - 1])
    return before + len(src_lines[lineno - 1].encode()[:col].decode())


def _cut(code: str, spans: list[tuple[int, int]]) -> str:
    for start, end in sorted(spans, reverse=True):
        code = code[:start] + code[end:]
    return code


def _typing_imports(tree: ast.AST) -> list[ast.stmt]:
    return [n for n in ast.walk(tree) if (isinstance(n, ast.ImportFrom) and n.module == "typing")
            or (isinstance(n, ast.Import) and any(a.name == "typing" for a in n.names))]


def drop_type_hints(s: "Sample") -> list[tuple[str, str]]:
    """Annotations removed from every signature, and the typing imports that only they used."""
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
    if not spans:
        return []
    out = _cut(code, spans)
    try:
        tree = ast.parse(out)
    except SyntaxError:
        return []
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.value.id for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
    drop = set()
    for node in _typing_imports(tree):
        if not any((a.asname or a.name).split(".")[0] in used for a in node.names):
            drop.update(range(node.lineno - 1, node.end_lineno))
    out = "".join(x for k, x in enumerate(out.splitlines(keepends=True)) if k not in drop).lstrip("\n")
    return [(s.input_full, out)] if _functions(out) else []


def _docstring_nodes(code: str) -> list[ast.Expr]:
    out = []
    for f in _functions(code):
        first = f.body[0] if f.body else None
        if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) and isinstance(
            first.value.value, str
        ):
            out.append(first)
    return out


def drop_docstrings(s: "Sample") -> list[tuple[str, str]]:
    code = s.output
    src = code.splitlines(keepends=True)
    drop = set()
    for node in _docstring_nodes(code):
        drop.update(range(node.lineno - 1, node.end_lineno))
    out = "".join(x for k, x in enumerate(src) if k not in drop)
    return [(s.input_full, out)] if drop and _functions(out) else []


def drop_doctests(s: "Sample") -> list[tuple[str, str]]:
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
    for k in sorted(drop):  # an "Example:" header left above nothing would still announce examples
        j = k - 1
        while j >= 0 and j not in drop and not src[j].strip():
            j -= 1
        if j >= 0 and j not in drop and re.fullmatch(r"(for )?(an )?examples?( usage)?\s*:?", src[j].strip(), re.I):
            drop.add(j)
    out = "".join(x for k, x in enumerate(src) if k not in drop)
    return [(s.input_full, out)] if drop and _functions(out) else []


# name -> (function, adds): a removing variant turns a 1 into 0, an adding one a 0 into 1
CORRUPTIONS: dict[str, tuple[Callable[["Sample"], list[tuple[str, str]]], bool]] = {
    f.__name__: (f, f in (join_sentences, join_lines)) for f in (
        drop_drug_sentences, drop_number_sentences, drop_professional_sentences, third_person, join_sentences,
        drop_docstrings, drop_type_hints, drop_doctests, drop_money_lines, drop_percentage_lines, join_lines)}


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
    target: str | None = None  # subgoal whose property the variant changed
    adds: bool = False  # the variant added the target property (brevity: joined) instead of removing it

    @property
    def text(self) -> str:
        """Everything the judge reads."""
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
    group: str  # the original sample's id: an original and its variants share a group
    target: str | None = None  # set on variants
    meta: dict = field(default_factory=dict)  # {"adds": True} on a variant that added its target property


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


def labels(sample: Sample, entries: list[dict]) -> dict[str, int | None]:
    """Each subgoal's label of ``sample``: 1, 0, or None (uncertain: the pair is left out)."""
    text = sample.text
    return {e["id"]: CHECKS[e["check"]].label(sample.output, text) for e in entries}


def _match_lengths(sid: str, chosen: list[Sample], pool: list[Sample], known: dict) -> set[str]:
    """Brevity subgoals: pair each chosen negative with the positive nearest to it in length (added to ``chosen``
    if need be); the ids of both are the natural samples this subgoal is judged on. Otherwise the natural positives
    (one sentence, three lines) would be the shorter, poorer texts, and a judge could score how much a text says."""
    free = [s for s in pool if known[s.id][sid] == 1]
    keep = set()
    for n in [s for s in chosen if known[s.id][sid] == 0]:
        if not free:
            break
        best = min(free, key=lambda s: abs(len(s.output) - len(n.output)))
        free.remove(best)
        keep |= {n.id, best.id}
        if best not in chosen:
            chosen.append(best)
    return keep


def build_pairs(seed: int = 0, per_label: int = 5, corruptions: int = 5) -> tuple[list[Pair], list[dict]]:
    """Pairs for every domain: for each subgoal up to ``per_label`` samples with and without the property (natural),
    every chosen sample paired with each subgoal of its domain that labels it, plus up to ``corruptions`` controlled
    variants per subgoal (each paired likewise). A ``match_length`` subgoal is judged only on its negatives, their
    length-matched positives, and the variants of those. Returns (pairs, subgoal entries)."""
    entries = load_subgoals()
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for domain, candidates in load_samples().items():
        subs = [e for e in entries if e["domain"] == domain]
        pool = list(candidates)
        rng.shuffle(pool)
        known = {s.id: labels(s, subs) for s in pool}
        chosen: list[Sample] = []
        for e in subs:  # stratify: natural positives and negatives for every subgoal
            for want in (1, 0):
                have = sum(known[s.id][e["id"]] == want for s in chosen)
                for s in pool:
                    if have >= per_label:
                        break
                    if s not in chosen and known[s.id][e["id"]] == want:
                        chosen.append(s)
                        have += 1
        matched = {e["id"]: _match_lengths(e["id"], chosen, pool, known) for e in subs if e.get("match_length")}
        variants: list[Sample] = []
        for e in subs:
            if not e["corrupt"]:
                continue
            make, adds = CORRUPTIONS[e["corrupt"]]
            made = 0
            for s in chosen:
                if made >= corruptions:
                    break
                before = known[s.id]
                if before[e["id"]] != (0 if adds else 1):
                    continue
                for inp, out in make(s):
                    c = Sample(f"{s.id}~{e['id']}", domain, out, inp, s.input_label, s.output_label,
                               corrupted_from=s.id, target=e["id"], adds=adds)
                    after = labels(c, subs)
                    if [k for k in after if after[k] != before[k]] == [e["id"]] and after[e["id"]] is not None:
                        variants.append(c)
                        made += 1
                        break
        for s in chosen + variants:
            for e, label in zip(subs, labels(s, subs).values()):
                if e["id"] in matched and (s.corrupted_from or s.id) not in matched[e["id"]]:
                    continue  # a brevity subgoal, and a sample (or a variant of one) outside its matched set
                if label is not None:
                    meta = {"adds": True} if s.adds else {}
                    pairs.append(Pair(s.id, domain, e["id"], label, s.text, s.corrupted_from or s.id, s.target, meta))
    return pairs, entries


def lacking(pairs: list[Pair], subgoal_ids: list[str] | None = None) -> dict[str, list[str]]:
    """Subgoals without a positive or a negative among ``pairs``: ``{id: ["positive"], ...}`` (empty: none)."""
    ids = subgoal_ids if subgoal_ids is not None else list(dict.fromkeys(p.subgoal_id for p in pairs))
    have = {(p.subgoal_id, p.label) for p in pairs}
    out = {}
    for s in ids:
        missing = [name for label, name in ((1, "positive"), (0, "negative")) if (s, label) not in have]
        if missing:
            out[s] = missing
    return out


def limit_pairs(pairs: list[Pair], limit: int | None) -> list[Pair]:
    """At most ``limit`` pairs, taking whole groups (an original with its variants).

    Stratified: groups are first chosen so that every subgoal keeps a positive and a negative (greedily: the group
    covering the rarest of the labels still missing, then the smaller); the rest is filled round-robin over domains,
    groups with variants first. Where the limit is too small for that, :func:`lacking` says which subgoal lacks
    which label.
    """
    if not limit or limit >= len(pairs):
        return pairs
    groups: dict[str, dict[str, list[Pair]]] = {}
    for p in pairs:
        groups.setdefault(p.domain, {}).setdefault(p.group, []).append(p)
    labelled = {g: {(p.subgoal_id, p.label) for p in ps} for d in groups.values() for g, ps in d.items()}
    sizes = {g: len(ps) for d in groups.values() for g, ps in d.items()}
    needs = {(p.subgoal_id, p.label) for p in pairs}
    # a label few groups have is worth more: take the group that covers the rarest missing labels first
    offered = Counter(need for have in labelled.values() for need in have)
    taken: list[str] = []
    size = 0
    while needs:
        fits = [g for g in labelled if g not in taken and size + sizes[g] <= limit and labelled[g] & needs]
        if not fits:
            break
        best = max(fits, key=lambda g: (sum(1 / offered[n] for n in labelled[g] & needs), -sizes[g]))
        taken.append(best)
        size += sizes[best]
        needs -= labelled[best]
    queues = {d: [g for g in gs if g not in taken] for d, gs in groups.items()}
    # groups with variants first (selectivity needs them), the smallest of those first (more groups fit)
    for d, q in queues.items():
        q.sort(key=lambda g: (not any(p.target for p in groups[d][g]), sizes[g]))
    while any(queues.values()):
        for d in list(queues):
            if queues[d]:
                group = queues[d].pop(0)
                if size + sizes[group] > limit:
                    queues[d] = []  # this domain is done; others may still fit a group
                    continue
                taken.append(group)
                size += sizes[group]
    keep = set(taken)
    return [p for p in pairs if p.group in keep]


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
        "lacking": lacking(pairs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the judge validity pairs; print one JSON line of counts.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="at most N pairs (as bench_judge --limit)")
    parser.add_argument("--data", type=Path, help="folder of the external jsonl files (default ../shared/data/external)")
    parser.add_argument("--out", type=Path, help="also write the pairs as JSON lines (outside the repo: licences)")
    args = parser.parse_args(argv)
    if args.data:
        os.environ["GOALCOVER_EXTERNAL_DATA"] = str(args.data)
    pairs, entries = build_pairs(seed=args.seed)
    pairs = limit_pairs(pairs, args.limit)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            for p in pairs:
                fh.write(json.dumps(asdict(p)) + "\n")
    counts = summary(pairs)
    counts["lacking"] = lacking(pairs, [e["id"] for e in entries])
    print(json.dumps({"seed": args.seed, **counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
