"""Fitting a sample into the judge's context window: keep its head and tail, cut the middle, and say so in the text.

Policy. The judge's prompt is ``[instructions][sample][subgoal + rubric + question]`` plus room for its reply. The
sample's budget is the engine's context length minus the longest fixed part of the prompt (over the subgoals and the
questions asked), minus the reply (``max_new_tokens``; one token when only digits are read), minus a small margin
for tokens that merge across the joins. A sample over budget keeps its first half and its last half of the budget and
the middle is replaced by a line ``[... N tokens cut ...]``, so the judge sees that text was removed (a Q&A keeps its
question and the end of its answer; a chat its first and last turns). ``N`` is counted by the judge's own tokenizer
and is reported per row (``gc_truncated_tokens``). Nothing is cut silently: the row, the run and the card all say so.

The fitted text is what the judge reads, so it is also what the pair cache key hashes: the same row under the same
budget gives the same key; a different budget gives a different text and a different key.

Counting is the engine's job (see ``goalcover_hf.engines.get_counter``): the transformers and llama.cpp engines count
with the model's tokenizer (no weights loaded); an OpenAI-compatible server is estimated at
:data:`CHARS_PER_TOKEN` characters per token.

Example:
    >>> text, cut = fit_text(long_text, budget=2000, counter=get_counter("embedded"))
    >>> cut  # tokens removed from the middle; 0 when the text fits
"""

from __future__ import annotations

import math
from typing import Protocol, Sequence

from .errors import GoalcoverError

MARKER = "[... {n} tokens cut ...]"
MARGIN = 16  # tokens that can merge differently where the sample meets the prompt around it
MIN_SAMPLE_TOKENS = 32  # a judge that cannot read even this much of a sample is the wrong judge
CHARS_PER_TOKEN = 3  # estimate for servers: English runs ~4 characters per token, so 3 errs toward cutting more
CHAT_OVERHEAD = 8  # estimated tokens a chat template adds per message (role markers), when it cannot be counted


class TokenCounter(Protocol):
    """What the truncation policy needs from an engine: its context and a way to count tokens."""

    context: int | None  # tokens the judge can read (prompt plus reply); None: unknown, nothing is cut

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character ``(start, end)`` of each token of ``text``."""

    def count_chat(self, chat: Sequence[dict]) -> int:
        """Tokens of ``chat`` as the engine renders it for the judge (chat template and generation cue included)."""


def fit_text(text: str, budget: int | None, counter: TokenCounter) -> tuple[str, int]:
    """``(text that fits in budget tokens, tokens cut)``: the text itself and 0 when it fits."""
    # No tokenizer goalcover supports makes more tokens than UTF-8 bytes: a short text needs no counting.
    if budget is None or len(text.encode("utf-8")) <= budget:
        return text, 0
    spans = counter.spans(text)
    total = len(spans)
    if total <= budget:
        return text, 0
    keep = budget - len(counter.spans(f"\n{MARKER.format(n=total)}\n"))
    while keep > 0:
        head = keep // 2
        tail = keep - head
        cut = total - head - tail
        start = spans[head - 1][1] if head else 0
        end = spans[total - tail][0] if tail else len(text)
        fitted = f"{text[:start]}\n{MARKER.format(n=cut)}\n{text[end:]}"
        over = len(counter.spans(fitted)) - budget
        if over <= 0:
            return fitted, cut
        keep -= over  # tokens merged differently across the joins: keep that many fewer and try again
    raise ValueError(f"cannot fit a sample into {budget} tokens")


def sample_budget(counter: TokenCounter, fixed_chats: Sequence[Sequence[dict]], reply_tokens: int) -> int | None:
    """Tokens left for the sample: context minus the longest prompt without the sample, the reply and a margin.

    ``fixed_chats`` are the prompts the judge will get, rendered with an empty sample. ``None`` when the context is
    unknown. Raises ``ValueError`` when the context leaves no useful room for a sample.
    """
    if counter.context is None:
        return None
    fixed = max(counter.count_chat(chat) for chat in fixed_chats)
    budget = counter.context - fixed - reply_tokens - MARGIN
    if budget < MIN_SAMPLE_TOKENS:
        raise GoalcoverError(
            f"the judge's context ({counter.context} tokens) leaves {max(budget, 0)} tokens for a sample: the prompt "
            f"without it takes {fixed} and the reply {reply_tokens}. Use a model with a longer context, raise "
            "--max-context-tokens, lower max_new_tokens or shorten the subgoals' rubric"
        )
    return budget


class CharCounter:
    """Token estimate for engines whose tokenizer goalcover cannot see (a server): one token per
    :data:`CHARS_PER_TOKEN` characters, plus :data:`CHAT_OVERHEAD` per message."""

    def __init__(self, context: int | None):
        self.context = context

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Spans of :data:`CHARS_PER_TOKEN` characters."""
        step = CHARS_PER_TOKEN
        return [(i, min(i + step, len(text))) for i in range(0, len(text), step)]

    def count_chat(self, chat: Sequence[dict]) -> int:
        """Estimated tokens of ``chat``: its characters plus :data:`CHAT_OVERHEAD` per message."""
        return sum(math.ceil(len(m["content"]) / CHARS_PER_TOKEN) + CHAT_OVERHEAD for m in chat) + CHAT_OVERHEAD
