"""Text (IMDB sentiment): byte-level (official LRA) or character-level (S4) classification.

Accepted layouts under ``<root>/imdb/`` (first found wins):
- ``aclImdb/{train,test}/{pos,neg}/*.txt`` (the Stanford archive; also ``imdb/{train,test}/...``);
- parquet files ``**/train*.parquet`` and ``**/test*.parquet`` with columns ``text``, ``label``
  (the Hugging Face ``stanfordnlp/imdb`` export; needs ``pyarrow``);
- ``train.csv`` and ``test.csv`` with a text column (``text`` or ``review``) and a label column
  (``label`` 0/1 or ``sentiment`` neg/pos).

IMDB has no validation split: as in official LRA and S4, the validation loader serves the test set.
Tokenisation: ``"byte"`` gives ids byte + 1 (pad 0, vocabulary 257), truncated to ``max_length``;
``"char"`` gives S4's character vocabulary from the training texts with ``min_freq`` (135
entries on the real data), ``max_length - 1`` characters plus ``<eos>``. The char vocabulary is
built on first use and saved beside the encoded cache (``<cache_dir>/text/.../vocab.json``).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset
from tqdm import tqdm

from harness.datasets import MalformedDataError, MissingDataError
from lra.data.base import LRADataModule
from lra.data.cache import ArrayCache, cache_key, fingerprint
from lra.data.collate import SequenceCollate
from lra.data.corpus import SequenceDataset, TokenCorpus
from lra.data.errors import SkipLog
from lra.data.paths import prepare_command
from lra.data.tokenizers import ByteTokenizer, CharTokenizer, TokenizedText
from lra.data.vocab import Vocabulary

FOLDER = "imdb"
_LABEL_WORDS = {"0": 0, "1": 1, "neg": 0, "pos": 1, "negative": 0, "positive": 1}


def _natural(p: Path) -> tuple:
    # "12_3.txt" sorts after "2_1.txt"
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name))


def find_imdb(root: Path) -> tuple[str, dict[str, list[Path]]]:
    """The layout found under ``<root>/imdb`` and its files per split, or MissingDataError."""
    base = root / FOLDER
    for acl in (base / "aclImdb", base):
        if all((acl / s / c).is_dir() for s in ("train", "test") for c in ("pos", "neg")):
            return "acl", {s: [acl / s / "neg", acl / s / "pos"] for s in ("train", "test")}
    if base.is_dir():
        pq = {s: sorted(p for p in base.rglob(f"{s}*.parquet")) for s in ("train", "test")}
        if pq["train"] and pq["test"]:
            return "parquet", pq
        csv = {s: [base / f"{s}.csv"] for s in ("train", "test")}
        if all(p[0].is_file() for p in csv.values()):
            return "csv", csv
    raise MissingDataError(
        base / "aclImdb",
        f"run `{prepare_command('text', root)}` (downloads aclImdb_v1.tar.gz), or place the IMDB data as "
        f"{base}/aclImdb/{{train,test}}/{{pos,neg}}/*.txt, {base}/{{train,test}}*.parquet or {base}/{{train,test}}.csv",
    )


def iter_reviews(kind: str, paths: list[Path]) -> Iterator[tuple[str, int, str]]:
    """(text, label, where) of every review of one split."""
    if kind == "acl":
        for folder, label in zip(paths, (0, 1)):
            for f in sorted(folder.glob("*.txt"), key=_natural):
                try:
                    text = f.read_bytes().decode("utf-8")
                except UnicodeDecodeError as err:
                    raise MalformedDataError(f, None, f"not valid UTF-8: {err}") from None
                yield text, label, str(f)
        return
    import pandas as pd

    for path in paths:
        if kind == "parquet":
            try:
                frame = pd.read_parquet(path)
            except ImportError as err:
                raise ImportError(f"reading {path} needs a parquet engine: pip install pyarrow ({err})") from None
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        text_col = next((c for c in ("text", "review") if c in frame.columns), None)
        label_col = next((c for c in ("label", "sentiment") if c in frame.columns), None)
        if text_col is None or label_col is None:
            raise MalformedDataError(path, None, f"needs a text column (text/review) and a label column "
                                                 f"(label/sentiment); found {list(frame.columns)}")
        first_line = 2 if kind == "csv" else 0  # csv: line numbers (header is line 1); parquet: row index
        for i, (text, raw) in enumerate(zip(frame[text_col].tolist(), frame[label_col].tolist())):
            label = _LABEL_WORDS.get(str(raw).strip().lower())
            if label is None:
                raise MalformedDataError(path, i + first_line, f"label {raw!r} is not one of 0/1/neg/pos")
            yield str(text), label, f"{path}:{i + first_line}"


class TextDataModule(TokenizedText, LRADataModule):
    """IMDB (2 classes). Batches: ``{"x": (B, T) long, "lengths": (B,), "y": (B,)}``.

    Args (beyond :class:`LRADataModule`):
        tokenizer: ``"byte"`` (official LRA, vocabulary 257) or ``"char"`` (S4).
        max_length: tokens per review (4096; the official code's config used 1000).
        min_freq: minimum training count of a character in the ``"char"`` vocabulary (S4: 15).

    ``vocab_size`` is 257 for bytes; for chars it reads (or builds, once) the vocabulary from
    the cache on first access, so it is available right after construction.
    """

    task = "text"
    num_classes = 2
    pad_index = 0

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        tokenizer: str = "byte",
        max_length: int = 4096,
        min_freq: int = 15,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        self._set_tokenizer(tokenizer, max_length, min_freq)

    @property
    def vocab(self) -> Vocabulary | None:
        """The char vocabulary (None for bytes)."""
        return None if self.tokenizer == "byte" else self._encoded["vocab"]

    @property
    def collate(self) -> Callable:
        return SequenceCollate(self.pad_index)

    def _build(self, split: str) -> Dataset:
        data = self._encoded
        # No validation split in IMDB: validate on the test set (official LRA, S4, S5).
        return data["test" if split == "val" else split]

    @cached_property
    def _encoded(self) -> dict:
        kind, files = find_imdb(self.root)
        sources = [p for split in ("train", "test") for p in files[split]]
        key = cache_key(task="text", kind=kind, source=fingerprint(sources), tokenizer=self.tokenizer,
                        max_length=self.max_length, min_freq=self.min_freq)
        cache = ArrayCache(self.cache_dir / "text", f"imdb-{self.tokenizer}", key)
        loaded = cache.load()
        if loaded is None:
            arrays, meta, vocab = self._encode(kind, files)
            extra = {"vocab.json": vocab.save} if vocab is not None else None
            cache.save(arrays, meta, extra)
        else:
            arrays, meta = loaded
            vocab = Vocabulary.load(cache.file("vocab.json")) if self.tokenizer == "char" else None
        skips = SkipLog()
        out: dict = {"vocab": vocab}
        shift = 1 if self.tokenizer == "byte" else 0
        for split in ("train", "test"):
            corpus = TokenCorpus(arrays[f"{split}_flat"], arrays[f"{split}_offsets"], shift)
            out[split] = SequenceDataset(corpus, arrays[f"{split}_labels"])
            self.skipped[split] = meta["skipped"][split]
            for reason, n in meta["skipped"][split].items():
                skips.add_many(reason, f"{split} split", n)
        skips.warn(f"IMDB under {self.root / FOLDER}")
        self.skipped["val"] = self.skipped["test"]
        return out

    def _encode(self, kind: str, files: dict[str, list[Path]]) -> tuple[dict, dict, Vocabulary | None]:
        texts: dict[str, list[str]] = {}
        labels: dict[str, np.ndarray] = {}
        skipped: dict[str, dict[str, int]] = {}
        for split in ("train", "test"):
            t, y, log = [], [], SkipLog()
            reviews = tqdm(iter_reviews(kind, files[split]), desc=f"read IMDB {split}", unit="review",
                           leave=False, mininterval=1.0, disable=None)
            for text, label, where in reviews:
                if not text.strip():
                    log.add("empty review", where)
                    continue
                t.append(text)
                y.append(label)
            if not t:
                raise MalformedDataError(files[split][0], None, f"no reviews in the {split} split")
            texts[split], labels[split], skipped[split] = t, np.asarray(y, dtype=np.int64), log.as_dict()
        vocab = None
        if self.tokenizer == "byte":
            tok: ByteTokenizer | CharTokenizer = ByteTokenizer()
        else:
            counts: Counter = Counter()
            for text in texts["train"]:
                CharTokenizer.count(text, self.max_length, counts)
            vocab = Vocabulary.build(counts, self.min_freq)
            tok = CharTokenizer(vocab)
        arrays = {}
        for split in ("train", "test"):
            encoded = [tok.encode(t, self.max_length)
                       for t in tqdm(texts[split], desc=f"encode IMDB {split}", unit="review", leave=False, mininterval=1.0, disable=None)]
            corpus = TokenCorpus.pack(encoded, tok.dtype)
            arrays[f"{split}_flat"], arrays[f"{split}_offsets"] = corpus.flat, corpus.offsets
            arrays[f"{split}_labels"] = labels[split]
        return arrays, {"skipped": skipped, "kind": kind}, vocab
