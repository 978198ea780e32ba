"""ListOps: reader (S4 tokens, vocabulary 18, dynamic padding), generator (labels re-evaluated
independently, lengths, label mix), and bad input."""

from __future__ import annotations

import filecmp
import statistics

import numpy as np
import pytest

from helpers.lra_files import LISTOPS_ROWS, write_listops
from lra.data import ListOpsDataModule, MalformedDataError, MissingDataError
from lra.generators.listops import OPERATORS, ListOpsConfig, generate_listops, sample_rows

ROWS = LISTOPS_ROWS


# -- an evaluator written independently of the generator: parse the nested tuple form --------

def _parse(tokens: list[str], pos: int):
    """Parse one node of the official string form; returns (tree, next position)."""
    if tokens[pos] == "(":
        left, pos = _parse(tokens, pos + 1)
        right, pos = _parse(tokens, pos)
        assert tokens[pos] == ")", tokens[pos]
        return (left, right), pos + 1
    return tokens[pos], pos + 1


def _evaluate(tree) -> int:
    # Unfold ((((op, c0), c1), ...), "]") into op and its children.
    assert isinstance(tree, tuple) and tree[1] == "]"
    node, children = tree[0], []
    while isinstance(node, tuple):
        node, child = node
        children.append(child)
    children.reverse()
    values = [int(c) if isinstance(c, str) else _evaluate(c) for c in children]
    return {"[MIN": min, "[MAX": max, "[MED": lambda v: int(statistics.median(v)),
            "[SM": lambda v: sum(v) % 10}[node](values)


def evaluate_source(source: str) -> int:
    tokens = source.split()
    if len(tokens) == 1:
        return int(tokens[0])
    tree, end = _parse(tokens, 0)
    assert end == len(tokens)
    return _evaluate(tree)


def test_independent_evaluator_on_known_rows():
    for source, label in ROWS:
        assert evaluate_source(source) == label


# -- reader -------------------------------------------------------------------------------------

def test_reader_counts_vocab_tokens_and_padding(tmp_path):
    write_listops(tmp_path, {"train": ROWS, "val": ROWS[:2], "test": ROWS[2:]})
    dm = ListOpsDataModule(tmp_path, batch_size=4)
    # Known before any data is read (the model is built from these).
    assert (dm.vocab_size, dm.pad_index, dm.num_classes, dm.max_length) == (18, 0, 10, 2048)
    dm.setup("fit")
    dm.setup("test")
    assert dm.summary()["sizes"] == {"train": 4, "val": 2, "test": 2}
    ds = dm.dataset("train")
    for i, (source, label) in enumerate(ROWS):
        ids, y = ds[i]
        expected = source.replace("(", " ").replace(")", " ").replace("]", "X").split() + ["<eos>"]
        assert [dm.vocab.tokens[t] for t in ids.tolist()] == expected
        assert y == label
    assert len(dm.vocab) == 18 and dm.vocab.tokens[:3] == ["<pad>", "<unk>", "<eos>"]
    batch = next(iter(dm.test_dataloader()))
    lengths = [len(s.replace("(", " ").replace(")", " ").split()) + 1 for s, _ in ROWS[2:]]
    assert batch["lengths"].tolist() == lengths
    assert batch["x"].shape == (2, max(lengths))  # padded to the batch, not to max_length
    assert int(batch["x"][1, lengths[1]:].abs().sum()) == 0  # pad id 0 after the true length
    assert batch["y"].tolist() == [5, 3]


def test_reader_uses_cache_on_second_start(tmp_path, monkeypatch):
    write_listops(tmp_path, {"train": ROWS})
    first = ListOpsDataModule(tmp_path).dataset("train")
    import lra.data.listops as mod

    monkeypatch.setattr(mod, "read_listops", lambda *a, **k: pytest.fail("re-encoded instead of using the cache"))
    second = ListOpsDataModule(tmp_path).dataset("train")
    assert [second[i][0].tolist() for i in range(4)] == [first[i][0].tolist() for i in range(4)]
    assert any((tmp_path / ".cache" / "listops").iterdir())


def test_limit_takes_first_examples(tmp_path):
    write_listops(tmp_path, {"train": ROWS})
    dm = ListOpsDataModule(tmp_path, limit_train=2)
    ds = dm.dataset("train")
    assert len(ds) == 2 and ds[1][1] == ROWS[1][1]


# -- bad input ------------------------------------------------------------------------------------

def test_missing_root_names_the_command(tmp_path):
    dm = ListOpsDataModule(tmp_path / "nowhere")
    with pytest.raises(MissingDataError) as err:
        dm.setup("fit")
    assert isinstance(err.value, FileNotFoundError)
    assert "python -m lra.prepare listops --root" in str(err.value)


def test_missing_split_file_names_it(tmp_path):
    write_listops(tmp_path, {"train": ROWS})
    with pytest.raises(FileNotFoundError, match=r"basic_val\.tsv.*python -m lra\.prepare listops"):
        ListOpsDataModule(tmp_path).setup("fit")


@pytest.mark.parametrize("bad_line, message", [
    ("( [MAX 1 ] )\t3\textra", r"basic_train\.tsv:3: expected 2 tab-separated fields"),
    ("( [MAX 1 ] )\t12", r"basic_train\.tsv:3: label 12 outside 0\.\.9"),
    ("( [MAX 1 ] )\tseven", r"basic_train\.tsv:3: label 'seven' is not an integer"),
])
def test_malformed_row_reports_file_and_line(tmp_path, bad_line, message):
    write_listops(tmp_path, {"train": ROWS[:1]})
    path = tmp_path / "listops-1000" / "basic_train.tsv"
    path.write_text(path.read_text() + bad_line + "\n")
    with pytest.raises(MalformedDataError, match=message) as err:
        ListOpsDataModule(tmp_path).dataset("train")
    assert isinstance(err.value, ValueError)


# -- generator --------------------------------------------------------------------------------------

def test_generator_official_rule_labels_lengths_and_mix():
    src, labels, lengths = sample_rows(np.random.default_rng(7), 24_000)
    assert len(src) > 1200  # about 8% of draws are kept
    for s, y, n in zip(src, labels, lengths):
        assert evaluate_source(s) == y
        tokens = [t for t in s.split() if t not in "()"]
        assert len(tokens) == n and 500 < n < 2000
    frac = np.bincount(labels, minlength=10) / len(labels)
    # MIN/MAX make 0 and 9 the majority classes, at about 17% each.
    assert 0.13 < frac[0] < 0.22 and 0.13 < frac[9] < 0.22
    assert frac[1:9].max() < 0.12
    text = " ".join(src[:200])
    assert all(op in text for op in OPERATORS)
    assert len(set(src)) == len(src)


def test_generated_small_files_are_read_back(tmp_path):
    cfg = ListOpsConfig(max_depth=5, min_length=10, max_length=80)
    out = generate_listops(tmp_path, 500, config=cfg, seed=3, workers=1, progress=False)
    assert out["rows"] == {"train": 480, "val": 10, "test": 10}
    dm = ListOpsDataModule(tmp_path)
    dm.setup()
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 480, "val": 10, "test": 10}
    lines = (tmp_path / "listops-1000" / "basic_train.tsv").read_text().splitlines()
    assert lines[0] == "Source\tTarget"
    for line in lines[1:]:
        source, label = line.split("\t")
        assert evaluate_source(source) == int(label)
        n = len([t for t in source.split() if t not in "()"])
        assert 10 < n < 80
    for i in range(20):
        ids, _ = dm.dataset("train")[i]
        assert len(ids) == len([t for t in lines[1 + i].split("\t")[0].split() if t not in "()"]) + 1


def test_generation_does_not_depend_on_worker_count(tmp_path):
    cfg = ListOpsConfig(max_depth=4, min_length=5, max_length=40)
    # Small chunks, so that two workers really share the work.
    generate_listops(tmp_path / "a", 300, config=cfg, seed=1, workers=1, progress=False, draws_per_chunk=100)
    generate_listops(tmp_path / "b", 300, config=cfg, seed=1, workers=2, progress=False, draws_per_chunk=100)
    for split in ("train", "val", "test"):
        name = f"listops-1000/basic_{split}.tsv"
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False)
