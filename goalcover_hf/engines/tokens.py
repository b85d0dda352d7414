"""Counting a prompt's tokens with a Hugging Face tokenizer, no weights loaded: what the local engines' counters share.

The scorer fits every sample into the judge's context (:mod:`goalcover_hf.truncation`) before it computes cache keys,
so counting must stay cheap: a full cache hit still never loads the model. Each backend's ``counter`` classmethod
says where its tokenizer and context come from.
"""

from __future__ import annotations

from typing import Sequence

from ..truncation import CHAT_OVERHEAD

_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
_NO_LIMIT = 10**7  # tokenizers without a limit report ~1e30 as model_max_length


class TokenizerCounter:
    """Counts with a Hugging Face tokenizer (the judge's own, or the GGUF's)."""

    def __init__(self, tokenizer, context: int | None):
        self.tokenizer = tokenizer
        self.context = context

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character ``(start, end)`` of each token of ``text``."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:  # the Rust tokenizer: offsets, and no "sequence too long" warning on a 1 MB row
            return list(backend.encode(text, add_special_tokens=False).offsets)
        spans, pos = [], 0  # a tokenizer without offsets: each token's decoded length, in order
        for token in self.tokenizer.encode(text, add_special_tokens=False):
            piece = len(self.tokenizer.decode([token]))
            spans.append((pos, min(pos + piece, len(text))))
            pos += piece
        return spans

    def count_chat(self, chat: Sequence[dict]) -> int:
        """Tokens of ``chat`` as the engine renders it (chat template and generation cue included)."""
        if not getattr(self.tokenizer, "chat_template", None):  # the engine renders it (a GGUF's own template)
            return sum(len(self.spans(m["content"])) + CHAT_OVERHEAD for m in chat) + CHAT_OVERHEAD
        # As the transformers engine tokenizes a prompt: the chat template's text, special tokens parsed.
        text = self.tokenizer.apply_chat_template(list(chat), tokenize=False, add_generation_prompt=True)
        return len(self.spans(text))


def context_of(config, tokenizer=None) -> int | None:
    """Positions the model was built for, from its config, lowered to the tokenizer's limit when it has one."""
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    context = next((getattr(text_config, k) for k in _CONTEXT_KEYS if isinstance(getattr(text_config, k, None), int)),
                   None)
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < _NO_LIMIT:
        context = min(context, limit) if context else limit
    return context


def lowest(*values: int | None) -> int | None:
    """The smallest of the limits given (None and 0 mean no limit); None when there is none."""
    values = [int(v) for v in values if v]
    return min(values) if values else None
