"""Build a tiny, randomly initialised Llama and its tokenizer offline, for a real `vllm serve`.

Why it exists: the real-vLLM tests need a model vLLM loads like any Hugging Face checkpoint,
but CI has no hub access and no weights may be committed. A 1.3 M-parameter Llama with a
byte-level BPE tokenizer trained here on generated sentences takes about 10 s and 2.5 MB.
Its output is noise; the tests only need exact token counts (requests send `ignore_eos`).

Run it with the vLLM virtualenv's python (it imports torch, tokenizers, transformers, none of
which the project's own virtualenv has):

    <vllm venv>/bin/python tests/realvllm/tiny_model.py OUT_DIR
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

__all__ = ["build", "main"]

# The CPU attention backend needs a head size divisible by 16 or 32: 256 / 4 heads = 64.
HIDDEN_SIZE = 256
NUM_HEADS = 4
NUM_KV_HEADS = 2
NUM_LAYERS = 2
VOCAB_TARGET = 1024
SPECIAL_TOKENS = ("<s>", "</s>", "<pad>")
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)

_SENTENCE_SEED = (
    "the fleet scales replicas when tokens per second rise above target and holds while "
    "new pods compile their graphs on neuron cores a queue of waiting requests means "
    "capacity is short prometheus scrapes every second the operator reads the rate"
)
_WORDS = tuple(_SENTENCE_SEED.split(" "))


def _corpus(rng: random.Random, sentences: int = 4000) -> list[str]:
    """Generated text is enough: the tokenizer only has to be valid, not good."""
    return [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 16))) + "." for _ in range(sentences)]


def build(out: Path, *, seed: int = 0) -> None:
    """Write config, safetensors weights and tokenizer files that vLLM loads as LlamaForCausalLM."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_TARGET,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_corpus(rng), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)

    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=2 * HIDDEN_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=NUM_HEADS,
        num_key_value_heads=NUM_KV_HEADS,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        torch_dtype="bfloat16",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    build(Path(args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
