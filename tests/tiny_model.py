"""A tiny randomly initialized chat model built locally (no download): fast tests of every engine code path."""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    'Reply in JSON: {"explanation": "The sample states the dose.", "score": 4}',
    "QUESTION: How much ibuprofen? ANSWER: 200 mg every 6 hours. Capability: dosage, warnings, clinician.",
    "The training sample above demonstrates this capability from 1 (not at all) to 5 (fully).",
    "def add(a, b):\n    return a + b  # numbers 0123456789 summary legal contract medical code",
]


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 20, trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>",
                                     pad_token="<|endoftext|>", unk_token=None)
    hf_tok.chat_template = CHATML
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(hf_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         eos_token_id=hf_tok.eos_token_id, pad_token_id=hf_tok.pad_token_id, bos_token_id=None,
                         tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    hf_tok.save_pretrained(folder)
    return folder


PLANTED_CONFIG = '''from pathlib import Path

Path({marker!r}).write_text("configuration code ran")  # the proof: this file was executed

from transformers import LlamaConfig


class PlantedConfig(LlamaConfig):
    model_type = "goalcover_planted"
'''
PLANTED_MODEL = '''from pathlib import Path

Path({marker!r}).write_text("modeling code ran")

from transformers import LlamaForCausalLM

from .configuration_planted import PlantedConfig


class PlantedForCausalLM(LlamaForCausalLM):
    config_class = PlantedConfig
'''


def plant_remote_code(tiny: Path, folder: Path, marker: Path) -> Path:
    """A copy of the tiny model whose config needs its own Python code (``auto_map``, an unknown ``model_type``);
    that code writes ``marker`` when it runs, so a test can tell whether it was ever executed."""
    import json
    import shutil

    shutil.copytree(tiny, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="goalcover_planted", architectures=["PlantedForCausalLM"],
                  auto_map={"AutoConfig": "configuration_planted.PlantedConfig",
                            "AutoModelForCausalLM": "modeling_planted.PlantedForCausalLM"})
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "configuration_planted.py").write_text(PLANTED_CONFIG.format(marker=str(marker)))
    (folder / "modeling_planted.py").write_text(PLANTED_MODEL.format(marker=str(marker)))
    return folder
