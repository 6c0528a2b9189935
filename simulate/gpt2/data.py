"""The gpt2 experiment's data: distinct random sequences "a_b_c" with random classes (D_*^T and
D_val), seeded, and their frame as saved in ``data.parquet``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from softleak.simulate.gpt2.spec import GPT2Spec


@dataclass(frozen=True)
class SequenceData:
    numbers: np.ndarray  # (n, 3) integers in 1..V: D_*^T
    y: np.ndarray  # (n,) classes
    val_numbers: np.ndarray  # (n_val, 3): D_val, disjoint from D_*^T
    y_val: np.ndarray  # (n_val,)

    @property
    def texts(self) -> list[str]:
        return to_texts(self.numbers)

    @property
    def val_texts(self) -> list[str]:
        return to_texts(self.val_numbers)

    def frame(self) -> pd.DataFrame:
        """The data as saved in ``data.parquet``."""
        frames = []
        for name, nums, y in (
            ("teacher", self.numbers, self.y),
            ("val", self.val_numbers, self.y_val),
        ):
            frames.append(
                pd.DataFrame(
                    {
                        "set": name,
                        "text": to_texts(nums),
                        "x0": nums[:, 0],
                        "x1": nums[:, 1],
                        "x2": nums[:, 2],
                        "y": y,
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)


def to_texts(numbers: np.ndarray) -> list[str]:
    """(n, 3) integers -> ["a_b_c", ...]."""
    return ["_".join(str(int(v)) for v in row) for row in numbers]


def make_sequences(n: int, n_val: int, vocab: int, c: int, seed: int) -> SequenceData:
    """``n + n_val`` distinct triples uniform in 1..vocab (duplicates redrawn) with i.i.d. uniform
    classes in 0..c-1; the first ``n`` are D_*^T, the rest D_val."""
    rng = np.random.default_rng(seed)
    total = n + n_val
    keys: dict[int, None] = {}
    while len(keys) < total:
        draw = rng.integers(1, vocab + 1, size=(total - len(keys), 3))
        for a, b, d in draw:
            keys.setdefault((int(a) * (vocab + 1) + int(b)) * (vocab + 1) + int(d), None)
    code = np.fromiter(keys, dtype=np.int64, count=total)
    base = vocab + 1
    numbers = np.stack([code // base**2, (code // base) % base, code % base], axis=1)
    y = rng.integers(0, c, total)
    return SequenceData(numbers[:n], y[:n], numbers[n:], y[n:])


def make_data(spec: GPT2Spec) -> SequenceData:
    return make_sequences(spec.n, spec.n_val, spec.vocab, spec.c, spec.data_seed())
