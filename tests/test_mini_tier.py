"""The mini tier: its configs are matched pairs that build and take a step (writing n_test/n_val into the record),
and the mini report puts the right intervals on hand-written records and never shows published numbers."""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
import yaml

from harness.cli import HarnessCLI
from lra.__main__ import TASKS
from lra.task import SequenceClassificationTask
from results.report import build

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "lra" / "configs"
MINI = sorted(p.name for p in CONFIGS.glob("*-mini.yaml") if "-transformer-" not in p.name)
SHARED_OPTIMISER = ("lr", "weight_decay", "warmup_steps", "total_steps", "min_lr_ratio", "betas", "encoder", "positional",
                    "d_model", "dropout", "embedding_dropout")


def _spec(name: str) -> dict:
    return yaml.safe_load((CONFIGS / name).read_text())


def _params(spec: dict) -> int:
    data_fields = {"num_classes": 10, "vocab_size": 18} if spec["model"]["init_args"].get("encoder", "token") == "token" \
        else {"num_classes": 2, "in_channels": 1, "grid": (32, 32)}
    module = SequenceClassificationTask(**spec["model"]["init_args"], **data_fields)
    return sum(p.numel() for p in module.parameters())


def test_every_mini_task_has_a_matched_transformer():
    assert MINI, "no lra/configs/*-mini.yaml"
    for name in MINI:
        hgrn, tf = _spec(name), _spec(name.replace("-mini", "-transformer-mini"))
        assert hgrn["model"]["init_args"]["backbone"] == "hgrn" and tf["model"]["init_args"]["backbone"] == "transformer"
        # identical data and trainer sections: tests/test_config_pairs.py
        for key in SHARED_OPTIMISER:
            assert hgrn["model"]["init_args"].get(key) == tf["model"]["init_args"].get(key), (name, key)
        p_hgrn, p_tf = _params(hgrn), _params(tf)
        assert abs(p_tf - p_hgrn) <= 0.10 * p_hgrn, f"{name}: {p_hgrn} vs {p_tf} parameters (more than 10% apart)"


@pytest.fixture(scope="module")
def listops_root(tmp_path_factory) -> Path:
    from lra.prepare import main as prepare

    root = tmp_path_factory.mktemp("mini")
    assert prepare(["listops", "--root", str(root), "--size", "300", "--min-length", "20", "--max-length", "80",
                    "--val-size", "40", "--test-size", "50", "--quiet", "--workers", "1"]) == 0
    return root


@pytest.mark.parametrize("backbone", ["", "-transformer"], ids=["hgrn", "transformer"])
@pytest.mark.parametrize("name", MINI)
def test_mini_config_takes_a_step_and_records_row_counts(name, backbone, listops_root, tmp_path):
    config = CONFIGS / name.replace("-mini", f"{backbone}-mini")
    run_dir = tmp_path / "run"
    HarnessCLI(SequenceClassificationTask, TASKS, args=[
        "fit", "--config", str(config), "--data.init_args.root", str(listops_root), "--run.dir", str(run_dir),
        "--trainer.max_steps", "2", "--trainer.val_check_interval", "2", "--trainer.enable_model_summary", "false",
    ])
    record = json.loads((run_dir / "record.json").read_text())
    m = record["metrics"]
    assert record["status"] == "complete" and m["steps"] == 2
    assert m["n_val"] == 40 and m["n_test"] == 50  # every validation and test row


def test_rows_seen_counts_limited_batches_and_ranks():
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from harness.cli import _rows_seen

    loader = DataLoader(TensorDataset(torch.zeros(70)), batch_size=32)
    assert _rows_seen(loader, [3]) == 70  # the last batch is short
    assert _rows_seen([loader], [1]) == 32  # limit_*_batches=1
    assert _rows_seen(loader, [1], world_size=2) == 64  # each of 2 ranks evaluated one batch
    assert _rows_seen(DataLoader(range(5)), [float("inf")]) == 5


# ---- the mini report on hand-written records ------------------------------------------------------------
# (model, variant) -> {seed: test accuracy}; n_test = 2000 everywhere
DEMO = {("hgrn", "cumsoftmax"): {0: 0.4500}, ("hgrn", "none"): {0: 0.4400}, ("transformer", "default"): {0: 0.3000}}
ABLATION = {
    ("hgrn", "cumsoftmax"): {0: 0.45, 1: 0.47, 2: 0.46},
    ("hgrn", "none"): {0: 0.43, 1: 0.445, 2: 0.44},  # differences -2, -2.5, -2 points: consistent
    ("hgrn", "linear"): {0: 0.50, 1: 0.40, 2: 0.47},  # differences +5, -7, +1: noise
    ("hgrn", "cumsoftmax-gate-none"): {0: 0.20, 1: 0.21},  # seed 2 failed
}


def write_records(root: Path, runs: dict, failed: tuple = ()) -> Path:
    for (model, variant), seeds in runs.items():
        for seed, acc in seeds.items():
            d = root / "listops" / f"{model}-{variant}" / f"seed{seed}"
            d.mkdir(parents=True)
            rec = {"schema": 1, "suite": "mini", "task": "listops", "model": model, "variant": variant, "seed": seed,
                   "status": "complete", "metrics": {"val_acc_best": acc, "test_acc_at_best_val": acc, "test_acc_last": acc,
                                                     "steps": 800, "params": 86410, "wall_time_s": 60.0,
                                                     "n_test": 2000, "n_val": 500}}
            (d / "record.json").write_text(json.dumps(rec))
    for model, variant, seed in failed:
        d = root / "listops" / f"{model}-{variant}" / f"seed{seed}"
        d.mkdir(parents=True)
        rec = {"schema": 1, "suite": "mini", "task": "listops", "model": model, "variant": variant, "seed": seed,
               "status": "failed", "failure": "test", "metrics": {}}
        (d / "record.json").write_text(json.dumps(rec))
    return root


def test_demo_report_gives_wilson_intervals_and_no_published_numbers(tmp_path):
    runs = write_records(tmp_path / "runs", DEMO)
    result = build("demo", runs, tmp_path / "out", "test_acc_at_best_val", kind="mini",
                   left_out={"pathfinder": "not learnable at this budget"})
    table = next(t for t in result.tables if t.name == "models")
    cell = table.rows[0][table.header.index("Accuracy % [95% CI]")]
    # 900 of 2000 (worked in tests/test_intervals.py): [42.83, 47.19]
    assert table.rows[0][1].startswith("HGRN, cumsoftmax") and cell == "45.0 [42.8, 47.2]"
    assert table.rows[-1][1] == "Transformer" and table.rows[-1][2] == "30.0 [28.0, 32.0]"
    readme = result.readme.read_text()
    assert "published" not in readme.lower().replace("not comparable with the published", "")
    assert "ours − published" not in readme and {t.name for t in result.tables} == {"models"}
    assert "intervals apart: HGRN higher" in readme  # 45.0 [42.8, 47.2] vs the Transformer's 30.0 [28.0, 32.0]
    assert "intervals overlap" in readme  # vs HGRN without lower bound, 44.0 [41.8, 46.2]
    assert "**pathfinder**: not learnable at this budget" in readme
    assert (result.out / "plots" / "mini_accuracy.png").is_file()


def test_ablation_report_pairs_by_seed(tmp_path):
    runs = write_records(tmp_path / "runs", ABLATION, failed=(("hgrn", "cumsoftmax-gate-none", 2),))
    result = build("lower-bound-mini", runs, tmp_path / "out", "test_acc_at_best_val", kind="mini")
    paired = next(t for t in result.tables if t.name == "paired")
    rows = {r[1]: r for r in paired.rows}
    ref = [45.0, 47.0, 46.0]
    assert rows["cumsoftmax (paper, reference)"][2] == f"{statistics.mean(ref):.2f} ± {statistics.stdev(ref):.2f} (3)"
    none = rows["none"]
    diffs = [43.0 - 45.0, 44.5 - 47.0, 44.0 - 46.0]
    half = 4.302653 * statistics.stdev(diffs) / math.sqrt(3)
    assert none[4] == f"{statistics.mean(diffs):+.2f} (n=3)"
    assert none[5] == f"[{statistics.mean(diffs) - half:+.2f}, {statistics.mean(diffs) + half:+.2f}]"
    assert none[6] == "yes, lower"
    assert rows["linear"][6] == "no"
    gate = rows["cumsoftmax-gate-none"]
    assert gate[4] == f"{statistics.mean([20 - 45, 21 - 47]):+.2f} (n=2)" and gate[6] == "yes, lower"
    models = next(t for t in result.tables if t.name == "models")
    gate_row = next(r for r in models.rows if "gate-none" in r[1])
    assert gate_row[3] == "2 (+1 failed)" and "no forget gate" in gate_row[1]
    readme = result.readme.read_text()
    assert f"beyond seed noise: `none` {statistics.mean(diffs):+.1f} [" in readme
    assert "within it: `linear` " in readme


def test_prepare_split_sizes_are_exact_and_checked(tmp_path, capsys):
    from lra.prepare import main as prepare

    assert prepare(["listops", "--root", str(tmp_path), "--size", "100", "--min-length", "5", "--max-length", "40",
                    "--val-size", "60", "--test-size", "40", "--quiet", "--workers", "1"]) == 1
    assert "--val-size 60 and --test-size 40" in capsys.readouterr().out
    assert prepare(["listops", "--root", str(tmp_path), "--size", "100", "--min-length", "5", "--max-length", "40",
                    "--val-size", "7", "--test-size", "23", "--quiet", "--workers", "1"]) == 0
    rows = {s: len((tmp_path / "listops-1000" / f"basic_{s}.tsv").read_text().splitlines()) - 1 for s in ("train", "val", "test")}
    assert rows == {"train": 70, "val": 7, "test": 23}
