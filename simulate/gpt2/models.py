"""The gpt2 experiment's tokenizers and models: the optional ``transformers`` (imported only
here, lazily, with the hub off), the sequence tokenizer and encoding, a local pretrained folder's
check and loading, and the GPT-2 classifiers built from it or from a config."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from softleak.simulate.gpt2.spec import EOS, GPT2Spec


class GPT2Error(ValueError):
    """Bad input: a missing or incomplete pretrained folder, transformers not installed."""


def _transformers():
    """Import transformers with the hub switched off (nothing is ever downloaded)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import transformers
    except ImportError:
        raise GPT2Error(
            "the gpt2 experiment needs transformers: pip install 'softleak[gpt2]'"
        ) from None
    transformers.logging.set_verbosity_error()
    return transformers


def sequence_tokenizer(vocab: int, max_length: int = 10):
    """A ``PreTrainedTokenizerFast`` over the sequence alphabet: "0".."V" (token id k is the number
    k), "_" (id V + 1) and "<|endoftext|>" (id V + 2: eos = bos = pad = unk); left padding.
    "a_b_c" is 5 tokens; ``decode`` gives the text back."""
    _transformers()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {str(i): i for i in range(vocab + 1)}
    words["_"] = vocab + 1
    words[EOS] = vocab + 2
    backend = Tokenizer(models.WordLevel(words, unk_token=EOS))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split("_", behavior="isolated")]
    )
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=EOS,
        bos_token=EOS,
        pad_token=EOS,
        unk_token=EOS,
        padding_side="left",
        model_max_length=max_length,
    )


def encode(tokenizer, texts: list[str], max_length: int, device: str) -> dict[str, torch.Tensor]:
    """Token ids and attention masks (n, L), left-padded to the longest, truncated at
    ``max_length``."""
    enc = tokenizer(
        texts, padding="longest", truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {
        "input_ids": enc["input_ids"].to(device),
        "attention_mask": enc["attention_mask"].to(device),
    }


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


def check_pretrained(path: str | Path) -> Path:
    """The folder if it holds a Hugging Face model (config.json and weights) and a tokenizer;
    else ``GPT2Error`` naming what is missing."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise GPT2Error(f"--pretrained {path}: no such folder (nothing is downloaded)")
    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        missing.append("weights (" + " or ".join(WEIGHT_FILES[:2]) + ")")
    tokenizer_files = ("tokenizer.json", "vocab.json", "tokenizer_config.json")
    if not any((folder / f).is_file() for f in tokenizer_files):
        missing.append("a tokenizer (tokenizer.json or vocab.json + merges.txt)")
    if missing:
        raise GPT2Error(
            f"--pretrained {path} is not a Hugging Face model folder: missing {', '.join(missing)}"
        )
    return folder


def load_tokenizer(spec: GPT2Spec):
    """The pretrained folder's tokenizer (left padding, pad = eos when it has no pad token) or
    ``sequence_tokenizer``."""
    if spec.pretrained is None:
        return sequence_tokenizer(spec.vocab, spec.max_length)
    transformers = _transformers()
    folder = check_pretrained(spec.pretrained)
    try:
        tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as err:
        raise GPT2Error(
            f"--pretrained {spec.pretrained}: cannot load its tokenizer: {err}"
        ) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def make_model(spec: GPT2Spec, tokenizer, seed: int):
    """A GPT-2 classifier with ``c`` outputs on ``spec.device``; its random weights (the whole
    model, or only the head of a pretrained one or with ``shared_init``) drawn from ``seed``
    (global RNG forked)."""
    transformers = _transformers()
    overrides = {}
    if spec.dropout is not None:
        overrides = {k: spec.dropout for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if spec.pretrained is not None:
            folder = check_pretrained(spec.pretrained)
            try:
                model = transformers.GPT2ForSequenceClassification.from_pretrained(
                    folder,
                    num_labels=spec.c,
                    local_files_only=True,
                    ignore_mismatched_sizes=True,
                    **overrides,
                )
            except (OSError, ValueError) as err:
                raise GPT2Error(
                    f"--pretrained {spec.pretrained}: cannot load a GPT-2 model: {err}"
                ) from None
        else:
            config = transformers.GPT2Config(
                vocab_size=len(tokenizer),
                n_positions=max(spec.max_length, 16),
                n_layer=spec.n_layer,
                n_embd=spec.n_embd,
                n_head=spec.n_head,
                num_labels=spec.c,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                **overrides,
            )
            if spec.shared_init:
                torch.manual_seed(spec.body_seed())
            model = transformers.GPT2ForSequenceClassification(config)
            if spec.shared_init:  # the head from this model's seed, as GPT-2's init draws it
                gen = torch.Generator().manual_seed(seed)
                with torch.no_grad():
                    w = torch.randn(model.score.weight.shape, generator=gen)
                    model.score.weight.copy_(w * config.initializer_range)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(spec.device)


def model_summary(model) -> dict:
    """The resolved model config (recorded in config.json) and its parameter count."""
    keys: tuple[str, ...] = (
        "vocab_size",
        "n_positions",
        "n_layer",
        "n_embd",
        "n_head",
        "num_labels",
    )
    keys += ("resid_pdrop", "embd_pdrop", "attn_pdrop", "pad_token_id")
    cfg = model.config.to_dict()
    return {k: cfg.get(k) for k in keys} | {
        "parameters": sum(p.numel() for p in model.parameters())
    }
