"""The dataset card: a "Capability coverage" section between goalcover's own markers and a ``goalcover`` key in
the YAML header. Everything else in the README stays byte for byte.

The section and the key carry every coverage figure with its interval, its decision against the target and what it
rests on (the judge's opinion, or calibrated on human labels), and say how far to trust them: the judge's agreement
with the labels, the corruption experiment when the run has one, or, when nothing was checked, that the figures are
the judge's uncalibrated opinion and how to check them."""

from __future__ import annotations

import datetime as _dt
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from .coverage import CoverageReport, Target
from .errors import GoalcoverError
from .files import atomic_path
from .gaps import Gap
from .models import EMBEDDED_WARNING
from .ppi import MIN_LABELS
from .trust import DEFAULT_HALF_WIDTH, check_figures

START = "<!-- goalcover:start -->"
END = "<!-- goalcover:end -->"
YAML_KEY = "goalcover"
PLOT_NAME = "goalcover_coverage.png"
HEATMAP_NAME = "goalcover_scores.png"
HUB_METADATA = {"tags": "goalcover", "annotations_creators": "machine-generated"}  # header lists the card joins
PLOT_FILES = (PLOT_NAME, HEATMAP_NAME)  # written beside the README; the section links them by relative path


class CardError(GoalcoverError):
    """A README the tool cannot update safely; the message names the file and what to fix."""


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def card_summary(report: CoverageReport, provenance: dict[str, Any], gaps: list[Gap],
                 target: Target | None = None) -> dict[str, Any]:
    """The machine-readable summary stored under the YAML header's ``goalcover`` key.

    Per subgoal: ``coverage`` (the figure shown; None with no evidence), its interval ``low``/``high``, ``decision``
    (gap / covered / uncertain / no evidence), ``method`` (``judge`` or ``calibrated``), ``labels``, and the judge's
    ``judge_coverage``, ``support``, ``scored`` and ``mean``. With labels, ``agreement`` holds each subgoal's AUC,
    kappa and verdict; ``validation`` the corruption experiment's summary when the run has one.

    Args:
        report (:class:`CoverageReport`): the coverage to show.
        provenance (``dict[str, Any]``): the run's provenance (goal, spec hash, judge, prompt version, ...).
        gaps (``list[Gap]``): the ranked gaps.
        target (:class:`Target`, *optional*): the support target (default: the report's ``min_coverage``).

    Returns:
        ``dict[str, Any]``: goal, judge, settings, per-subgoal figures and the gap ids, ranked.
    """
    target = target or report.target
    agreement = None
    if report.agreement is not None:
        figures = check_figures(report)["subgoals"]
        agreement = {sid: {"labels": f["labels"], "auc": _round(f["auc"]), "kappa": _round(f["kappa"]),
                           "verdict": f["verdict"]} for sid, f in figures.items()}
    return {
        "goal": provenance.get("goal"),
        "spec_hash": provenance.get("spec_hash"),
        "model": provenance.get("model"),
        "engine": provenance.get("engine"),
        "mode": provenance.get("mode"),
        "method": provenance.get("method"),
        "prompt_version": provenance.get("prompt_version"),
        "threshold": report.threshold,
        "min_coverage": report.min_coverage,
        "target": {"min_fraction": target.min_fraction, "min_samples": target.min_samples},
        "rows": report.rows,
        "sample": report.sample,
        "truncated_rows": report.truncated_rows,
        "confidence": report.confidence,
        "labels": report.labels,
        "mean_coverage": round(report.mean_coverage, 4),
        "subgoals": {
            s.id: {"coverage": _round(s.coverage) if s.decision != "no evidence" else None, "low": _round(s.low),
                   "high": _round(s.high), "decision": s.decision, "method": s.method, "labels": s.labels,
                   "judge_coverage": _round(s.judge_coverage), "support": s.support, "scored": s.scored,
                   "mean": _round(s.mean, 3)}
            for s in report.subgoals
        },
        "gaps": [g.subgoal for g in gaps],  # ranked, largest shortfall first
        "uncertain": [s.id for s in report.uncertain],
        "agreement": agreement,
        "validation": _plain(report.validation),
    }


def _plain(value: Any) -> Any:
    """Tuples as lists, numbers as Python floats: what YAML writes and the Hub reads back alike."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return _round(value)
    return value


def render_section(report: CoverageReport, provenance: dict[str, Any], gaps: list[Gap], plot: str = PLOT_NAME,
                   template: str | Path | None = None, *, heatmap: str = HEATMAP_NAME, target: Target | None = None,
                   gap_meta: dict[str, Any] | None = None, repo_id: str | None = None, split: str = "train") -> str:
    """Markdown of the coverage section (without markers) from ``cards/coverage_section.md.j2`` or ``template``.

    Args:
        report (:class:`CoverageReport`): the coverage to show.
        provenance (``dict[str, Any]``): the run's provenance (goal, spec hash, judge, prompt version, ...).
        gaps (``list[Gap]``): the ranked gaps.
        plot (``str``, defaults to ``PLOT_NAME``), heatmap (``str``, defaults to ``HEATMAP_NAME``): the charts'
            paths, relative to the README.
        template (``str`` or ``Path``, *optional*): a Jinja template file to use instead.
        target (:class:`Target`, *optional*): the support target (default: the report's ``min_coverage``).
        gap_meta (``dict``, *optional*): the ``gaps.json`` document (settings, embedding model, namer) when the gaps
            came from one.
        repo_id (``str``, *optional*): a Hub dataset id; evidence row ids then link to its dataset viewer.
        split (``str``, defaults to ``"train"``): the split those links open.

    Returns:
        ``str``: Markdown ending with a newline.
    """
    from .version import __version__

    source = (
        Path(template).read_text(encoding="utf-8")
        if template
        else resources.files("goalcover_hf.card_templates").joinpath("coverage_section.md.j2").read_text("utf-8")
    )
    target = target or report.target
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=False)
    return env.from_string(source).render(
        report=report, provenance=provenance, gaps=gaps, plot=plot, heatmap=heatmap, goal=provenance.get("goal"),
        trust=check_figures(report, DEFAULT_HALF_WIDTH), validation=report.validation, min_labels=MIN_LABELS,
        embedded_warning=EMBEDDED_WARNING if provenance.get("embedded") else None,
        target_text=target.describe(), gap_rank={g.subgoal: g.rank or k + 1 for k, g in enumerate(gaps)},
        gap_meta=gap_meta, settings=(gap_meta or {}).get("settings", {"low_score": None}),
        repo_id=repo_id, split=split, generated=_dt.date.today().isoformat(), version=__version__,
    ).strip() + "\n"


def _split_header(text: str, source: str) -> tuple[str | None, str]:
    """Return (header YAML or None, body). The header is the block between a leading '---' line and the next."""
    if not (text.startswith("---\n") or text.startswith("---\r\n")):
        return None, text
    first_nl = text.index("\n") + 1
    match = re.compile(r"^---[ \t]*\r?$", re.M).search(text, first_nl)
    if match is None:
        raise CardError(f"{source}: the YAML header opened by '---' on line 1 is never closed by another '---' line")
    end = text.index("\n", match.start()) + 1 if "\n" in text[match.start():] else len(text)
    return text[:end], text[end:]


def _header_data(header: str, source: str) -> dict[str, Any]:
    """The keys of a YAML header (``---`` lines included); a header that is not a YAML mapping is a :class:`CardError`."""
    try:
        data = yaml.safe_load("".join(header.splitlines(keepends=True)[1:-1]))
    except yaml.YAMLError as err:
        raise CardError(f"{source}: the YAML header is not valid YAML ({err}); fix it by hand first") from None
    if data is not None and not isinstance(data, dict):
        raise CardError(f"{source}: the YAML header is not a mapping of keys; fix it by hand first")
    return data or {}


def _key_block(inner: list[str], key: str) -> tuple[int, int] | None:
    """The lines ``[start, stop)`` of a top-level key's block in a header's inner lines (its trailing blank lines are
    the user's), or ``None`` when the key is not there."""
    start = next((i for i, line in enumerate(inner) if re.match(rf"^{re.escape(key)}\s*:", line)), None)
    if start is None:
        return None
    stop = start + 1
    while stop < len(inner) and (inner[stop].startswith((" ", "\t", "-")) or not inner[stop].strip()):
        stop += 1
    while stop > start + 1 and not inner[stop - 1].strip():
        stop -= 1
    return start, stop


def _set_yaml_key(header: str | None, value: Any, source: str) -> str:
    """Replace or add the top-level ``goalcover`` key, leaving every other header line as it was."""
    block = yaml.safe_dump({YAML_KEY: value}, sort_keys=False, allow_unicode=True, width=100)
    if header is None:
        return f"---\n{block}---\n"
    _header_data(header, source)  # refuse a header that does not parse before touching it
    lines = header.splitlines(keepends=True)
    inner = lines[1:-1]
    found = _key_block(inner, YAML_KEY)
    if found is None:
        if inner and not inner[-1].endswith("\n"):
            inner[-1] += "\n"
        inner = inner + [block]
    else:
        inner = inner[:found[0]] + [block] + inner[found[1]:]
    return lines[0] + "".join(inner) + lines[-1]


def _add_list_item(header: str | None, key: str, item: str, source: str) -> str:
    """Make the header's top-level list ``key`` hold ``item`` once, adding one line (or one flow entry) and changing
    no other byte; an odd layout of that key (a scalar, an empty value) is rewritten as a list, that key only."""
    header = header if header is not None else "---\n---\n"
    data = _header_data(header, source)
    current = data.get(key)
    if isinstance(current, list) and item in current:
        return header
    if current is not None and not isinstance(current, (list, str)):
        raise CardError(f"{source}: the YAML header's {key!r} is not a list; make it one (e.g. '{key}: [{item}]')")
    want = {**data, key: (current if isinstance(current, list) else [current] * (current is not None)) + [item]}
    lines = header.splitlines(keepends=True)
    nl = "\r\n" if lines[0].endswith("\r\n") else "\n"
    inner = lines[1:-1]
    if inner and not inner[-1].endswith("\n"):
        inner[-1] += nl
    found = _key_block(inner, key)
    if found is None:
        edited = inner + [f"{key}:{nl}- {item}{nl}"]
    else:
        edited = _insert_item(inner, *found, item, nl)
        if edited is None or _header_data(lines[0] + "".join(edited) + lines[-1], source) != want:
            block = yaml.safe_dump({key: want[key]}, sort_keys=False, allow_unicode=True, width=100)
            edited = inner[:found[0]] + [block.replace("\n", nl)] + inner[found[1]:]
    merged = lines[0] + "".join(edited) + lines[-1]
    if _header_data(merged, source) != want:
        raise CardError(f"{source}: cannot add {item!r} to the YAML header's {key!r} safely; add it by hand")
    return merged


def _insert_item(inner: list[str], start: int, stop: int, item: str, nl: str) -> list[str] | None:
    """``inner`` with ``item`` added to the list at ``inner[start:stop]`` in the list's own style, or ``None`` when
    the list is not one line of flow style (``key: [a, b]``) nor a block of ``- a`` lines."""
    line = inner[start]
    value = line.split(":", 1)[1].strip()
    if value.startswith("[") and "]" in value and stop == start + 1:
        close = line.rindex("]")
        empty = not line[line.index("[") + 1:close].strip()
        return inner[:start] + [line[:close] + ("" if empty else ", ") + item + line[close:]] + inner[stop:]
    if value and not value.startswith("#"):
        return None
    items = [k for k in range(start + 1, stop) if re.match(r"^\s*- ", inner[k])]
    if not items:
        return None
    indent = re.match(r"^(\s*)- ", inner[items[0]]).group(1)
    last = max(k for k in range(start + 1, stop) if inner[k].strip() and not inner[k].lstrip().startswith("#"))
    return inner[:last + 1] + [f"{indent}- {item}{nl}"] + inner[last + 1:]


def _set_section(body: str, section: str, source: str) -> str:
    starts, ends = body.count(START), body.count(END)
    if starts == 0 and ends == 0:
        sep = "" if not body or body.endswith("\n\n") else ("\n" if body.endswith("\n") else "\n\n")
        return f"{body}{sep}{START}\n{section}{END}\n"
    if starts != 1 or ends != 1 or body.index(START) > body.index(END):
        line = body[: body.find(START if starts != 1 else END)].count("\n") + 1
        raise CardError(
            f"{source}: goalcover's markers are damaged ({starts} '{START}', {ends} '{END}', near line {line}); "
            "keep exactly one start marker before one end marker, or delete both to start over"
        )
    head, rest = body.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{section}{END}{tail}"


def merge_card(text: str, section: str, summary: dict[str, Any], source: str = "README.md") -> str:
    """Put goalcover's section and YAML key into a README's text, changing nothing else.

    Args:
        text (``str``): the README as it is (may be empty).
        section (``str``): from :func:`render_section`.
        summary (``dict[str, Any]``): from :func:`card_summary`.
        source (``str``, defaults to ``"README.md"``): how error messages name the README.

    Returns:
        ``str``: the merged README; a :class:`CardError` when its header or markers cannot be updated safely.
    """
    from huggingface_hub import DatasetCard

    header, body = _split_header(text, source)
    for key, item in HUB_METADATA.items():
        header = _add_list_item(header, key, item, source)
    merged = _set_yaml_key(header, summary, source) + _set_section(body, section, source)
    check = DatasetCard(merged).data.to_dict().get(YAML_KEY)
    if check != summary:  # the Hub must read back exactly what we wrote
        raise CardError(f"{source}: the merged YAML header does not read back; please report this")
    return merged


def build_card(text: str, report: CoverageReport, provenance: dict[str, Any], gaps: list[Gap], folder: str | Path,
               *, target: Target | None = None, gap_meta: dict[str, Any] | None = None, repo_id: str | None = None,
               template: str | Path | None = None, source: str = "README.md") -> tuple[str, list[Path]]:
    """Merge the section and key into a README's text and draw the charts.

    Args:
        text (``str``): the README as it is (may be empty).
        report (:class:`CoverageReport`): the coverage to show.
        provenance (``dict[str, Any]``): the run's provenance (goal, spec hash, judge, prompt version, ...).
        gaps (``list[Gap]``): the ranked gaps.
        folder (``str`` or ``Path``): where the charts go (beside the README).
        target, gap_meta, repo_id, template: as in :func:`render_section`.
        source (``str``, defaults to ``"README.md"``): how error messages name the README.

    Returns:
        ``tuple[str, list[Path]]``: the merged text and the chart files.
    """
    from .plot import coverage_plot, score_heatmap

    section = render_section(report, provenance, gaps, PLOT_NAME, template, heatmap=HEATMAP_NAME, target=target,
                             gap_meta=gap_meta, repo_id=repo_id)
    merged = merge_card(text, section, card_summary(report, provenance, gaps, target), source)
    folder = Path(folder)
    target = target or report.target
    line = target.fraction(report.population) if report.population else target.min_fraction
    plots = [
        coverage_plot(report, folder / PLOT_NAME, gap_ids=[g.subgoal for g in gaps], target_fraction=line,
                      target_label=f"target: {target.describe()}"),
        score_heatmap(report, folder / HEATMAP_NAME),
    ]
    return merged, plots


def write_card(readme: str | Path, report: CoverageReport, provenance: dict[str, Any], gaps: list[Gap],
               template: str | Path | None = None, *, target: Target | None = None,
               gap_meta: dict[str, Any] | None = None, repo_id: str | None = None) -> Path:
    """Create or update a README in place (atomically) and write its charts beside it.

    Args:
        readme (``str`` or ``Path``): the README (created with its folder if missing).
        report (:class:`CoverageReport`): the coverage to show.
        provenance (``dict[str, Any]``): the run's provenance (goal, spec hash, judge, prompt version, ...).
        gaps (``list[Gap]``): the ranked gaps.
        template, target, gap_meta, repo_id: as in :func:`render_section`.

    Returns:
        ``Path``: ``readme``.

    Example:
        >>> write_card("README.md", report, run.provenance, gaps)
    """
    readme = Path(readme)
    text = readme.read_bytes().decode("utf-8") if readme.exists() else ""  # bytes: keep \r\n as it is
    readme.parent.mkdir(parents=True, exist_ok=True)
    merged, _ = build_card(text, report, provenance, gaps, readme.parent, target=target, gap_meta=gap_meta,
                           repo_id=repo_id, template=template, source=str(readme))
    with atomic_path(readme) as tmp:
        tmp.write_bytes(merged.encode("utf-8"))  # bytes: no newline translation
    return readme


def read_card(path_or_repo: str | Path, revision: str | None = None) -> dict[str, Any] | None:
    """The ``goalcover`` summary of a card.

    Args:
        path_or_repo (``str`` or ``Path``): a README path, a folder holding one, or a Hub dataset id (``user/name``).
        revision (``str``, *optional*): the Hub revision to read.

    Returns:
        ``dict`` or ``None``: what :func:`card_summary` wrote, or ``None`` when the card has none.

    Example:
        >>> read_card("user/my-dataset")["subgoals"]["states_dose"]["coverage"]
    """
    path = Path(path_or_repo)
    if path.is_dir():
        path = path / "README.md"
    if path.is_file():
        return _summary_of(path.read_text(encoding="utf-8"), str(path))
    if path.suffix.lower() == ".md" or path.is_absolute() or str(path_or_repo).startswith((".", "~")):
        raise CardError(f"{path}: no such card file")
    repo_id = str(path_or_repo)
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (EntryNotFoundError, HFValidationError, LocalEntryNotFoundError,
                                        OfflineModeIsEnabled, RepositoryNotFoundError)

    try:
        local = HfApi().hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=revision)
    except HFValidationError:
        raise CardError(f"{repo_id!r} is neither a card file, a folder nor a Hub dataset id (user/name)") from None
    except RepositoryNotFoundError:
        raise CardError(f"{repo_id}: no such dataset on the Hub (or no access to it)") from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as err:
        raise CardError(f"{repo_id}: cannot reach the Hub to read its card ({type(err).__name__}; "
                        "is HF_HUB_OFFLINE set?)") from None
    except EntryNotFoundError:  # the repo has no card yet
        return None
    return _summary_of(Path(local).read_text(encoding="utf-8"), f"{repo_id}/README.md")


def _summary_of(text: str, source: str) -> dict[str, Any] | None:
    header, _ = _split_header(text, source)
    return None if header is None else _header_data(header, source).get(YAML_KEY)
