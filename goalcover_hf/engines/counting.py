"""How many tokens a prompt takes, and how many the judge can read, per engine, without loading any weights.

The scorer fits every sample into the judge's context (:mod:`goalcover_hf.truncation`) before it computes cache keys,
so counting must stay cheap: a full cache hit still never loads the model.

- transformers: the model's tokenizer; context from its config (``max_position_embeddings`` or the like), lowered to
  the tokenizer's ``model_max_length`` when that is set.
- llamacpp: the GGUF's tokenizer as transformers reads it; context ``n_ctx`` (default 8192), at most the GGUF's own.
- openai: an estimate (:class:`~goalcover_hf.truncation.CharCounter`); context from ``max_context_tokens``, else the
  server's ``max_model_len`` in ``GET /v1/models`` (vLLM reports it), else unknown: nothing is cut, and a prompt the
  server refuses becomes that pair's error.

Every engine also takes ``max_context_tokens``: a lower limit of your own (memory, speed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ..truncation import CHAT_OVERHEAD, CharCounter

_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
_NO_LIMIT = 10**7  # tokenizers without a limit report ~1e30 as model_max_length


class TokenizerCounter:
    """Counts with a Hugging Face tokenizer (the judge's own, or the GGUF's)."""

    def __init__(self, tokenizer, context: int | None):
        self.tokenizer = tokenizer
        self.context = context

    def spans(self, text: str) -> list[tuple[int, int]]:
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


def _lowest(*values: int | None) -> int | None:
    values = [int(v) for v in values if v]
    return min(values) if values else None


def transformers_counter(model: str, trust_remote_code: bool = False, max_context_tokens: int | None = None):
    """The transformers engine's counter: its tokenizer and config, read from the same place the engine reads."""
    from transformers import AutoConfig, AutoTokenizer

    from ..models import local_folder, resolve_model
    from .transformers import pretrained

    ref = resolve_model(model)
    source = local_folder(ref)
    kwargs = {"revision": ref.revision} if ref.revision else {}
    config = pretrained(AutoConfig, source, ref.identity, trust_remote_code, **kwargs)
    tokenizer = pretrained(AutoTokenizer, source, ref.identity, trust_remote_code, **kwargs)
    return TokenizerCounter(tokenizer, _lowest(context_of(config, tokenizer), max_context_tokens))


def gguf_counter(model: str, n_ctx: int, max_context_tokens: int | None = None):
    """The llamacpp engine's counter: the GGUF's tokenizer (read by transformers, no weights) and ``n_ctx``."""
    from transformers import AutoConfig, AutoTokenizer

    from ..models import ModelNotFoundError, resolve_model

    path = Path(resolve_model(model).location)
    try:
        config = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, trust_remote_code=False)
    except Exception as err:  # gguf/transformers raise many kinds on a damaged file
        raise ModelNotFoundError(f"{path}: cannot read this GGUF file ({type(err).__name__}: {err})") from None
    return TokenizerCounter(tokenizer, _lowest(context_of(config), n_ctx, max_context_tokens))


def server_counter(model: str, options: Mapping[str, Any]):
    """The openai engine's counter: an estimate, with the context you give or the one the server reports."""
    from .openai import served_context

    limit = options.get("max_context_tokens")
    if limit is None:
        limit = served_context(options["base_url"], model, options.get("api_key_env"))
    return CharCounter(int(limit) if limit else None)
