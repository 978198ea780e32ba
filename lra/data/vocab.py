"""A token vocabulary with the S4 special tokens, saved as JSON beside the caches."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

SPECIALS = ("<pad>", "<unk>", "<eos>")
PAD, UNK, EOS = 0, 1, 2


class Vocabulary:
    """Tokens in id order; ids 0, 1, 2 are ``<pad>``, ``<unk>``, ``<eos>``."""

    def __init__(self, tokens: Sequence[str]) -> None:
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {tuple(tokens[:3])}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("duplicate tokens in vocabulary")
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}

    pad_index = PAD
    unk_index = UNK
    eos_index = EOS

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def id(self, token: str) -> int:
        return self.index.get(token, UNK)

    @classmethod
    def build(cls, counts: Counter, min_freq: int = 1, specials: Sequence[str] = SPECIALS) -> "Vocabulary":
        """torchtext's order: specials, then by count (descending), ties by token."""
        ordered = sorted((t for t, n in counts.items() if n >= min_freq and t not in specials),
                         key=lambda t: (-counts[t], t))
        return cls(list(specials) + ordered)

    def save(self, path: str | os.PathLike) -> None:
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps({"tokens": self.tokens}, ensure_ascii=False))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        return cls(json.loads(Path(path).read_text())["tokens"])
