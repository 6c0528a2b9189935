"""GPT-2 classifiers on random sequences (paper appendix B, Fig. 9).

Data: ``n`` distinct sequences "a_b_c" of three integers uniform in 1..V (``vocab``), each with a
class uniform over ``c`` (i.i.d., not balanced) -- the teacher's set D_*^T -- and ``n_val`` fresh
distinct sequences (none in D_*^T) with random classes, D_val (chance level). Seeded; the data are
saved with the run (``data.parquet``) and checked on every resume.

Model: Hugging Face ``GPT2ForSequenceClassification`` (the logits at the last non-pad token). With
``pretrained=DIR`` the weights and the tokenizer come from a local folder in the usual Hugging Face
layout (``save_pretrained``: config.json, model.safetensors / pytorch_model.bin, tokenizer files);
a language-model checkpoint gets a fresh classification head. Without it the model is built from a
config (``config="small"``: GPT-2 124M's shape; ``"tiny"``: 2 layers, width 128; ``n_layer``,
``n_embd``, ``n_head`` override either) with ``sequence_tokenizer``: a word-level tokenizer over
"0".."V", "_" and "<|endoftext|>" (pad = eos, left padding), in which token id k is the number k.
Nothing is ever downloaded (``HF_HUB_OFFLINE=1``, ``local_files_only=True``).

Protocol: the teacher trains on D_*^T with minibatch AdamW (``simulate.minibatch``; lr 5e-4, batch
64, grad-norm clip 1.0, as the reference). Its logits on D_*^T, computed once in eval mode in
float32, give the soft labels softmax(z_T / tau). Student repetition s draws one permutation of
D_*^T; its first round(rho n) elements are D_train^S and the rest D_test^S (nested across rho). Each
student (rho x tau x repetition) is a fresh model -- the pretrained weights with a new head; from a
config, by default (``shared_init``) the same random body as the teacher's initial one with a new
head, the analogue of shared pretrained weights, else a new random init -- trained with cross-entropy against the soft labels (its own logits are not
divided by tau; lr 5e-4, batch 32), one after another. Mixed precision (bfloat16 autocast) is used
on CUDA for the training forward only; soft targets, losses and evaluations are float32.

Outputs in the run directory:
- ``config.json``: the spec, its ``run_id``, versions, the resolved model config and its size;
- ``data.parquet``: ``set`` (teacher | val), ``text``, ``x0, x1, x2``, ``y``;
- ``teacher.pt`` (the teacher's state_dict, ``torch.save``; loaded with ``weights_only=True``) and
  ``teacher.json`` (its metrics and per-epoch loss, written last: the teacher is done);
- ``parts/<student>.parquet`` (one row per student, written when it finishes) and
  ``results.parquet`` (their concatenation; the results-table columns of docs/design.md).
The directory follows ``simulate.rundir``'s contract: a rerun of the same spec reuses the saved
teacher and skips finished students (more rho, tau or repetitions add students); a spec of other
settings is refused (``IdentityMismatch``) unless ``restart=True``; damaged records are set aside and
recomputed.

The package, one concern a module: ``spec`` (``GPT2Spec``, its presets and the student grid),
``data`` (the sequences), ``models`` (the optional transformers, tokenizers, local loading,
models), ``training`` (teacher and student) and ``run`` (``run_gpt2``, the run directory).
"""

from __future__ import annotations

from softleak.simulate.gpt2.data import SequenceData, make_data, make_sequences, to_texts
from softleak.simulate.gpt2.models import (
    WEIGHT_FILES,
    GPT2Error,
    check_pretrained,
    encode,
    load_tokenizer,
    make_model,
    model_summary,
    sequence_tokenizer,
)
from softleak.simulate.gpt2.run import OUTPUTS, run_gpt2
from softleak.simulate.gpt2.spec import CONFIGS, EOS, GRID, SPLITS, GPT2Spec, student_id
from softleak.simulate.gpt2.training import train_student, train_teacher

__all__ = [
    "CONFIGS",
    "EOS",
    "GRID",
    "OUTPUTS",
    "SPLITS",
    "WEIGHT_FILES",
    "GPT2Error",
    "GPT2Spec",
    "SequenceData",
    "check_pretrained",
    "encode",
    "load_tokenizer",
    "make_data",
    "make_model",
    "make_sequences",
    "model_summary",
    "run_gpt2",
    "sequence_tokenizer",
    "student_id",
    "to_texts",
    "train_student",
    "train_teacher",
]
