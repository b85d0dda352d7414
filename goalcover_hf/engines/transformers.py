"""The default engine: a causal LM in transformers, constrained by Outlines."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Sequence

from pydantic import BaseModel

from ..logging import get_logger
from ..models import local_folder, resolve_model
from .base import Chat, Engine

logger = get_logger(__name__)


class TransformersEngine(Engine):
    name = "transformers"

    def __init__(self, model: str = "embedded", threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.ref = resolve_model(model)
        self.identity = self.ref.identity
        torch.set_num_threads(threads or os.cpu_count() or 1)
        source = local_folder(self.ref)
        kwargs = {"revision": self.ref.revision} if self.ref.revision else {}
        logger.info("loading %s", self.identity)
        self.tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        self.model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **kwargs).eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not self.tokenizer.chat_template:
            raise ValueError(f"{self.identity}: the tokenizer has no chat template; use an instruction-tuned model")
        self._outlines_model = None

    def chat_text(self, chat: Chat) -> str:
        return self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)

    @lru_cache(maxsize=8)
    def _generator(self, schema: type[BaseModel]):
        # Building the logits processor compiles the schema's automaton: do it once per schema.
        import outlines

        if self._outlines_model is None:
            self._outlines_model = outlines.from_transformers(self.model, self.tokenizer)
        return outlines.Generator(self._outlines_model, schema)

    def generate_json(self, chats: Sequence[Chat], schema: type[BaseModel], max_new_tokens: int) -> list[str]:
        import torch
        from outlines.inputs import Chat as OutlinesChat

        generator = self._generator(schema)
        with torch.inference_mode():
            out = generator.batch([OutlinesChat(list(c)) for c in chats], max_new_tokens=max_new_tokens, do_sample=False)
        return list(out)

    def choice_token_ids(self, choices: Sequence[str]) -> list[int]:
        ids = []
        for choice in choices:
            tokens = self.tokenizer.encode(choice, add_special_tokens=False)
            if len(tokens) != 1:
                raise ValueError(f"{self.identity}: choice {choice!r} is not a single token")
            ids.append(tokens[0])
        return ids

    def choice_probs(self, chats: Sequence[Chat], choices: Sequence[str]) -> list[list[float]]:
        import torch

        ids = self.choice_token_ids(choices)
        texts = [self.chat_text(c) for c in chats]
        self.tokenizer.padding_side = "left"
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        # Left padding: count positions from each row's first real token, as generate() does.
        position_ids = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = self.model(**batch, position_ids=position_ids, logits_to_keep=1).logits[:, -1, :]
        return torch.softmax(logits[:, ids].float(), dim=-1).tolist()
