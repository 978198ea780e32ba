"""Tokenisers: UTF-8 bytes (official LRA), characters (S4) and the S4 ListOps rule.

Encoders return numpy id arrays; truncation and ``<eos>`` follow each convention:
- bytes: id = byte + 1, pad 0, vocabulary 257, truncated to ``max_length``, no ``<eos>``;
- chars: ids from a :class:`Vocabulary`, truncated to ``max_length - 1``, then ``<eos>``;
- ListOps: ``(`` and ``)`` deleted, ``]`` -> ``X``, split on whitespace, then ``<eos>``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from lra.data.vocab import EOS, SPECIALS, UNK, Vocabulary

BYTE_VOCAB_SIZE = 257  # pad + 256 byte values


class ByteTokenizer:
    """UTF-8 bytes. Encodes to raw bytes (uint8); the +1 shift (pad is 0) is applied when batching
    (:class:`lra.data.corpus.TokenCorpus`)."""

    dtype = np.dtype(np.uint8)

    def encode(self, text: str, max_length: int) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8")[:max_length], dtype=np.uint8)


class CharTokenizer:
    """Unicode code points (S4 ``list(text)``), mapped through a vocabulary; ``<eos>`` appended."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.dtype = np.uint8 if len(vocab) <= 256 else np.uint16
        # Lookup table for the Basic Multilingual Plane; rarer code points go through the dict.
        self._lut = np.full(0x10000, UNK, dtype=self.dtype)
        for token, i in vocab.index.items():
            if len(token) == 1 and ord(token) < 0x10000:
                self._lut[ord(token)] = i

    @staticmethod
    def count(text: str, max_length: int, counts: Counter) -> None:
        """Add the characters that survive truncation to ``counts`` (for building a vocabulary)."""
        counts.update(text[: max_length - 1])

    def encode(self, text: str, max_length: int) -> np.ndarray:
        text = text[: max_length - 1]
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        ids = np.empty(codes.size + 1, dtype=self.dtype)
        ids[:-1] = self._lut[np.minimum(codes, 0xFFFF)]
        wide = np.flatnonzero(codes > 0xFFFF)
        for k in wide:
            ids[k] = self.vocab.id(chr(int(codes[k])))
        ids[-1] = EOS
        return ids


LISTOPS_SYMBOLS = tuple(str(d) for d in range(10)) + ("X", "[MIN", "[MAX", "[MED", "[SM")
LISTOPS_VOCAB = Vocabulary(list(SPECIALS) + list(LISTOPS_SYMBOLS))  # 18 entries (S4: "Actual size 18")

_DROP_PARENS = str.maketrans({"(": None, ")": None, "]": "X"})
# Every ListOps symbol becomes one character, so a row is encoded with one table lookup.
_SHORT = {"[MIN": "\x01", "[MAX": "\x02", "[MED": "\x03", "[SM": "\x04"}
_LISTOPS_LUT = np.full(256, UNK, dtype=np.uint8)
for _d in range(10):
    _LISTOPS_LUT[ord(str(_d))] = LISTOPS_VOCAB.index[str(_d)]
_LISTOPS_LUT[ord("X")] = LISTOPS_VOCAB.index["X"]
for _tok, _ch in _SHORT.items():
    _LISTOPS_LUT[ord(_ch)] = LISTOPS_VOCAB.index[_tok]


def listops_tokens(source: str) -> list[str]:
    """The S4 rule: delete parentheses, ``]`` -> ``X``, split on whitespace."""
    return source.translate(_DROP_PARENS).split()


def encode_listops(source: str, append_eos: bool = True) -> tuple[np.ndarray, int]:
    """Ids (uint8) of a ListOps source string and the number of unknown tokens in it."""
    text = source.translate(_DROP_PARENS)
    for token, char in _SHORT.items():
        text = text.replace(token, char)
    parts = text.split()
    joined = "".join(parts)
    ids = None
    if len(joined) == len(parts):  # every token is now a single character (the normal case)
        try:
            ids = _LISTOPS_LUT[np.frombuffer(joined.encode("latin-1"), dtype=np.uint8)]
        except UnicodeEncodeError:
            ids = None
    if ids is None:  # something unexpected in the row: map token by token
        ids = np.array([LISTOPS_VOCAB.id(t) for t in listops_tokens(source)], dtype=np.uint8)
    unknown = int(np.count_nonzero(ids == UNK))
    if append_eos:
        ids = np.append(ids, np.uint8(EOS))
    return ids.astype(np.uint8, copy=False), unknown


TOKENIZERS = ("byte", "char")


class TokenizedText:
    """Tokenizer options shared by the Text and Retrieval DataModules (which provide ``vocab``)."""

    tokenizer: str
    drop_last: bool

    def _set_tokenizer(self, tokenizer: str, max_length: int, min_freq: int) -> None:
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.min_freq = int(min_freq)

    @property
    def vocab_size(self) -> int:
        return BYTE_VOCAB_SIZE if self.tokenizer == "byte" else len(self.vocab)

    @property
    def pipeline(self) -> dict[str, object]:
        """The data switches of docs/FIDELITY.md (copied into the run record)."""
        out: dict[str, object] = {"tokenizer": self.tokenizer, "max_length": self.max_length}
        if self.tokenizer == "char":
            out.update(min_freq=self.min_freq, eos=True)
        return {**out, "drop_last": self.drop_last}
