"""Versioned prompt templates. A prompt's version is its name plus a hash of its text, so editing a template
changes every fingerprint and cache key that depends on it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

_DIR = Path(__file__).parent
_ENV = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)


@dataclass(frozen=True)
class Prompt:
    """A template of ``goalcover_hf/prompts``: its name and text, in ``{# part: NAME #}`` sections."""
    name: str
    text: str

    @property
    def version(self) -> str:
        """``name@hash`` of the text: part of every fingerprint and cache key that uses it."""
        return f"{self.name}@{hashlib.sha256(self.text.encode()).hexdigest()[:10]}"

    def render(self, **values) -> str:
        """The whole template rendered with ``values``."""
        return _ENV.from_string(self.text).render(**values).strip()

    def parts(self) -> list[str]:
        """Names of the ``{# part: NAME #}`` sections, in file order (the order a chat lays them out)."""
        return [chunk.partition(" #}")[0].strip() for chunk in self.text.split("{# part: ")[1:]]

    def chat(self, *parts: str, system: str = "system", **values) -> list[dict]:
        """The chat this template asks: its ``system`` part, then one user message of ``parts`` (rendered with
        ``values``) joined by blank lines.

        Example:
            >>> load_prompt("gaps_v1").chat("user", goal=spec.goal, subgoal=sub)
            [{'role': 'system', 'content': ...}, {'role': 'user', 'content': ...}]
        """
        user = "\n\n".join(self.section(part, **values) for part in parts)
        return [{"role": "system", "content": self.section(system)}, {"role": "user", "content": user}]

    def section(self, part: str, **values) -> str:
        """Render one ``{# part: NAME #}`` section of a multi-part template."""
        chunks = self.text.split("{# part: ")
        for chunk in chunks[1:]:
            name, _, body = chunk.partition(" #}")
            if name.strip() == part:
                return _ENV.from_string(body).render(**values).strip()
        raise KeyError(f"prompt {self.name} has no part {part!r}")


@lru_cache(maxsize=None)
def load_prompt(name: str) -> Prompt:
    """The template ``goalcover_hf/prompts/NAME.j2`` (read once per process)."""
    return Prompt(name, (_DIR / f"{name}.j2").read_text(encoding="utf-8"))


# ---- the score prompts ---------------------------------------------------------------------------------------------
SAMPLE_END = "SAMPLE>>>"  # closes the score prompts' data block; a row must not close it early


def escape_sample(text: str) -> str:
    """The sample as the judge reads it: a row that writes the data block's end marker cannot close it early."""
    return text.replace(SAMPLE_END, "SAMPLE >>>")


def body_parts(template: Prompt) -> list[str]:
    """The parts of a score template every chat shows, in file order: all but the system part and the asks."""
    return [p for p in template.parts() if p != "system" and not p.startswith("ask_")]


def sample_first(template: Prompt) -> bool:
    """Whether the template shows the sample before the subgoal, so one sample's chats share a long beginning."""
    return body_parts(template)[0] == "sample"


def subgoal_text(subgoal) -> str:
    """The parts of a subgoal the judge reads, as one string (the pair cache hashes it; the id changes nothing)."""
    import json

    return json.dumps([subgoal.name, subgoal.description, subgoal.low, subgoal.mid, subgoal.high], ensure_ascii=False)


def score_chat(template: Prompt, sample: str, subgoal, ask: str, **values) -> list[dict]:
    """The chat asking ``ask`` (an ``ask_*`` part) of ``template`` about one (sample, subgoal) pair.

    Args:
        template: a score template (``score_v2`` or a method's).
        sample: the sample text, already escaped and fitted to the context.
        subgoal: the :class:`~goalcover_hf.spec.Subgoal` (its name, description and rubric anchors are shown).
        ask: the question part, e.g. ``"ask_digit"``, ``"ask_json"``, ``"ask_explanation"``.
        **values: what the question needs, e.g. ``score=`` for ``ask_explanation``.
    """
    fields = {"sample": sample, "name": subgoal.name, "description": subgoal.description, "low": subgoal.low,
              "mid": subgoal.mid, "high": subgoal.high}
    return template.chat(*body_parts(template), ask, **fields, **values)
