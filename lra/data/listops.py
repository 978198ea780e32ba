"""ListOps: ``listops-1000/basic_{train,val,test}.tsv`` (header ``Source\\tTarget``).

Tokens follow S4: parentheses deleted, ``]`` -> ``X``, whitespace split, ``<eos>`` appended;
the vocabulary is fixed at 18 (``<pad>`` 0, ``<unk>`` 1, ``<eos>`` 2, digits, X, 4 operators),
so ``vocab_size`` is known without reading any data. Batches are padded per batch.
A row longer than ``max_length`` keeps its first ``max_length - 1`` tokens and its ``<eos>`` (S4's rule and
the published runs', ``truncation="keep_eos"``, the default) or, with ``truncation="cut"`` (our earlier rule),
its first ``max_length`` tokens, the ``<eos>`` cut away. No LRA row is long enough for either to apply at
``max_length`` 2048.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset
from tqdm import tqdm

from harness.datasets import MalformedDataError
from lra.data.base import LRADataModule
from lra.data.cache import ArrayCache, cache_key, fingerprint
from lra.data.collate import SequenceCollate
from lra.data.corpus import SequenceDataset, TokenCorpus
from lra.data.errors import DataSkipWarning
from lra.data.paths import require
from lra.data.tokenizers import LISTOPS_VOCAB, encode_listops
from lra.data.vocab import EOS
from lra.data.tsv import iter_lines

FOLDER = "listops-1000"
NUM_CLASSES = 10
TRUNCATIONS = ("keep_eos", "cut")


def read_listops(path: Path, max_length: int, append_eos: bool = True,
                 truncation: str = "keep_eos") -> tuple[TokenCorpus, np.ndarray, dict]:
    """Encode one ListOps TSV. Returns the corpus, labels and counts (unknown tokens, truncated)."""
    seqs: list[np.ndarray] = []
    labels: list[int] = []
    unknown = truncated = 0
    for line_no, line in tqdm(iter_lines(path), desc=f"encode {path.name}", unit="row", leave=False, mininterval=1.0, disable=None):
        if line_no == 1 and line.split("\t", 1)[0].strip() == "Source":
            continue  # header
        if not line.strip():
            raise MalformedDataError(path, line_no, "empty line")
        fields = line.split("\t")
        if len(fields) != 2:
            raise MalformedDataError(path, line_no, f"expected 2 tab-separated fields (Source, Target), got {len(fields)}")
        try:
            label = int(fields[1])
        except ValueError:
            raise MalformedDataError(path, line_no, f"label {fields[1]!r} is not an integer") from None
        if not 0 <= label < NUM_CLASSES:
            raise MalformedDataError(path, line_no, f"label {label} outside 0..{NUM_CLASSES - 1}")
        ids, unk = encode_listops(fields[0], append_eos)
        if ids.size == 0 or (append_eos and ids.size == 1):
            raise MalformedDataError(path, line_no, "empty Source")
        unknown += unk
        if ids.size > max_length:
            truncated += 1
            if append_eos and truncation == "keep_eos":
                ids = np.append(ids[: max_length - 1], np.uint8(EOS))
            else:
                ids = ids[:max_length]
        seqs.append(ids)
        labels.append(label)
    if not seqs:
        raise MalformedDataError(path, None, "no examples")
    return TokenCorpus.pack(seqs, np.uint8), np.asarray(labels, dtype=np.int64), {"unknown_tokens": unknown, "truncated": truncated}


class ListOpsDataModule(LRADataModule):
    """ListOps (10 classes). Batches: ``{"x": (B, T) long, "lengths": (B,), "y": (B,)}``.

    Args (beyond :class:`LRADataModule`):
        max_length: longest sequence kept (S4 ``l_max`` 2048; the data has <= 2000 tokens incl. eos).
            Longer rows are truncated, counted and reported (never silently).
        append_eos: append ``<eos>`` (S4 does).
        truncation: ``"keep_eos"`` (S4, published; default) or ``"cut"``; see the module docstring.
    """

    task = "listops"
    num_classes = NUM_CLASSES
    vocab = LISTOPS_VOCAB
    vocab_size = len(LISTOPS_VOCAB)  # 18
    pad_index = LISTOPS_VOCAB.pad_index  # 0

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        max_length: int = 2048,
        append_eos: bool = True,
        truncation: str = "keep_eos",
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        if truncation not in TRUNCATIONS:
            raise ValueError(f"truncation must be one of {TRUNCATIONS}, got {truncation!r}")
        if max_length < 2 and truncation == "keep_eos" and append_eos:
            raise ValueError(f"max_length {max_length} leaves no token before <eos>; use max_length >= 2")
        self.max_length = int(max_length)
        self.append_eos = bool(append_eos)
        self.truncation = truncation

    @property
    def pipeline(self) -> dict[str, object]:
        """The data switches of docs/FIDELITY.md (copied into the run record)."""
        return {"max_length": self.max_length, "append_eos": self.append_eos, "truncation": self.truncation,
                "drop_last": self.drop_last}

    def split_path(self, split: str) -> Path:
        return self.root / FOLDER / f"basic_{split}.tsv"

    @property
    def collate(self) -> Callable:
        return SequenceCollate(self.pad_index)

    def _build(self, split: str) -> Dataset:
        path = require(self.split_path(split), self.task, self.root)
        key = cache_key(task="listops", source=fingerprint([path]), max_length=self.max_length, eos=self.append_eos,
                        truncation=self.truncation)
        cache = ArrayCache(self.cache_dir / "listops", split, key)
        loaded = cache.load()
        if loaded is None:
            corpus, labels, counts = read_listops(path, self.max_length, self.append_eos, self.truncation)
            cache.save({"flat": corpus.flat, "offsets": corpus.offsets, "labels": labels}, {"counts": counts})
        else:
            arrays, meta = loaded
            corpus, labels, counts = TokenCorpus(arrays["flat"], arrays["offsets"]), arrays["labels"], meta["counts"]
        self.skipped[split] = {}
        if counts["truncated"] or counts["unknown_tokens"]:
            warnings.warn(f"{path}: {counts['truncated']} row(s) truncated to {self.max_length} tokens, "
                          f"{counts['unknown_tokens']} unknown token(s) mapped to <unk>", DataSkipWarning, stacklevel=2)
        return SequenceDataset(corpus, labels)
