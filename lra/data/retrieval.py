"""Retrieval (ACL Anthology Network citation pairs): ``tsv_data/new_aan_pairs.{train,eval,test}.tsv``.

Rows have no header and five tab-separated fields ``label, id1, id2, text1, text2``; quotes are
ordinary characters (official ``use_quote_delim=False``). The label is read as a number (the
release writes ``0``/``1``, official LRA parses floats) and must be 0 or 1. Each document is
encoded on its own: ``"byte"`` ids are byte + 1 cut to ``max_length`` (official: 4000);
``"char"`` uses S4's character vocabulary from both training documents (no minimum count,
about 98 entries), ``max_length - 1`` characters plus ``<eos>``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset
from tqdm import tqdm

from harness.datasets import MalformedDataError
from lra.data.base import LRADataModule
from lra.data.cache import ArrayCache, cache_key, fingerprint
from lra.data.collate import PairCollate
from lra.data.corpus import PairDataset, TokenCorpus
from lra.data.errors import SkipLog
from lra.data.paths import require
from lra.data.tokenizers import ByteTokenizer, CharTokenizer, TokenizedText
from lra.data.tsv import iter_lines
from lra.data.vocab import Vocabulary

FOLDER = "tsv_data"
FILES = {"train": "new_aan_pairs.train.tsv", "val": "new_aan_pairs.eval.tsv", "test": "new_aan_pairs.test.tsv"}


def iter_pairs(path: Path) -> Iterator[tuple[int, str, str]]:
    """(label, text1, text2) of every row; malformed rows raise with file and line."""
    for line_no, line in iter_lines(path):
        fields = line.split("\t")
        if len(fields) != 5:
            raise MalformedDataError(path, line_no, f"expected 5 tab-separated fields "
                                                    f"(label, id1, id2, text1, text2), got {len(fields)}")
        try:
            value = float(fields[0])
        except ValueError:
            raise MalformedDataError(path, line_no, f"label {fields[0]!r} is not a number") from None
        if value not in (0.0, 1.0):
            raise MalformedDataError(path, line_no, f"label {fields[0]!r} is not 0 or 1")
        yield int(value), fields[3], fields[4]


class RetrievalDataModule(TokenizedText, LRADataModule):
    """AAN (2 classes). Batches: ``{"x1": (B, T1) long, "x2": (B, T2) long, "lengths1": (B,),
    "lengths2": (B,), "y": (B,)}``; each document is padded to its own longest in the batch.

    Args (beyond :class:`LRADataModule`):
        max_length: tokens per document (4000).
        tokenizer: ``"byte"`` (official, vocabulary 257) or ``"char"`` (S4; vocabulary read or
            built once on first access of ``vocab_size`` and cached).
        min_freq: minimum training count for the char vocabulary (S4: 1).
    """

    task = "retrieval"
    num_classes = 2
    pad_index = 0

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        max_length: int = 4000,
        tokenizer: str = "byte",
        min_freq: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        self._set_tokenizer(tokenizer, max_length, min_freq)

    def split_path(self, split: str) -> Path:
        return self.root / FOLDER / FILES[split]

    @cached_property
    def vocab(self) -> Vocabulary | None:
        """The char vocabulary (built from the training pairs once, then read from the cache)."""
        if self.tokenizer == "byte":
            return None
        train = require(self.split_path("train"), self.task, self.root)
        key = cache_key(task="retrieval-vocab", source=fingerprint([train]), max_length=self.max_length,
                        min_freq=self.min_freq)
        cache = ArrayCache(self.cache_dir / "retrieval", "vocab", key)
        if cache.exists():
            return Vocabulary.load(cache.file("vocab.json"))
        counts: Counter = Counter()
        for _, t1, t2 in iter_pairs(train):
            CharTokenizer.count(t1, self.max_length, counts)
            CharTokenizer.count(t2, self.max_length, counts)
        vocab = Vocabulary.build(counts, self.min_freq)
        cache.save({}, {"size": len(vocab)}, {"vocab.json": vocab.save})
        return vocab

    @property
    def collate(self) -> Callable:
        return PairCollate(self.pad_index)

    def _build(self, split: str) -> Dataset:
        path = require(self.split_path(split), self.task, self.root)
        vocab = self.vocab
        key = cache_key(task="retrieval", source=fingerprint([path]), tokenizer=self.tokenizer,
                        max_length=self.max_length, vocab=vocab.tokens if vocab else None)
        cache = ArrayCache(self.cache_dir / "retrieval", f"{split}-{self.tokenizer}", key)
        loaded = cache.load()
        if loaded is None:
            tok: ByteTokenizer | CharTokenizer = ByteTokenizer() if vocab is None else CharTokenizer(vocab)
            docs1, docs2, labels = [], [], []
            log = SkipLog()
            rows = tqdm(iter_pairs(path), desc=f"encode AAN {split}", unit="pair", leave=False, mininterval=1.0, disable=None)
            for line_no, (label, t1, t2) in enumerate(rows, start=1):
                if not t1.strip() or not t2.strip():
                    log.add("pair with an empty document", f"{path}:{line_no}")  # would be a 0-length sequence
                    continue
                docs1.append(tok.encode(t1, self.max_length))
                docs2.append(tok.encode(t2, self.max_length))
                labels.append(label)
            if not labels:
                raise MalformedDataError(path, None, "no usable rows")
            c1, c2 = TokenCorpus.pack(docs1, tok.dtype), TokenCorpus.pack(docs2, tok.dtype)
            arrays = {"flat1": c1.flat, "offsets1": c1.offsets, "flat2": c2.flat, "offsets2": c2.offsets,
                      "labels": np.asarray(labels, dtype=np.int64)}
            meta = {"rows": len(labels), "skipped": log.as_dict(),
                    "examples": {k: v for k, v in log.examples.items()}}
            cache.save(arrays, meta)
        else:
            arrays, meta = loaded
        shift = 1 if vocab is None else 0
        self.skipped[split] = meta["skipped"]
        log = SkipLog()
        for reason, n in meta["skipped"].items():
            log.add_many(reason, ", ".join(meta["examples"][reason]), n)
        log.warn(str(path))
        return PairDataset(TokenCorpus(arrays["flat1"], arrays["offsets1"], shift),
                           TokenCorpus(arrays["flat2"], arrays["offsets2"], shift), arrays["labels"])
