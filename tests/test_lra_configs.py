"""Every LRA config: the paper configs parse and build their network; every tiny config (HGRN and
Transformer) trains a few steps through ``python -m lra fit`` on fixture or generated data and writes a valid
run record."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.cli import HarnessCLI
from helpers.lra_files import write_aan, write_acl, write_cifar, write_pathfinder
from lra.__main__ import TASKS
from lra.task import SequenceClassificationTask

CONFIGS = Path(__file__).resolve().parent.parent / "lra" / "configs"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """One data root in the release layout holding a small fixture of every task."""
    from lra.prepare import main as prepare

    root = tmp_path_factory.mktemp("lra")
    prepare(["listops", "--root", str(root), "--size", "300", "--min-length", "20", "--max-length", "80", "--quiet"])
    write_acl(root)
    write_aan(root)
    write_cifar(root)
    write_pathfinder(root, 32, 12)
    write_pathfinder(root, 128, 6)
    return root


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("backbone", ["", "-transformer"], ids=["hgrn", "transformer"])
def test_tiny_config_trains_and_writes_a_record(task, backbone, data_root, tmp_path):
    config = CONFIGS / f"{task}{backbone}-tiny.yaml"
    run_dir = tmp_path / "run"
    HarnessCLI(SequenceClassificationTask, TASKS, args=[
        "fit", "--config", str(config), "--data.init_args.root", str(data_root), "--run.dir", str(run_dir),
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
        "--trainer.limit_test_batches", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
    ])
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "complete" and record["task"] == task
    assert record["model"] == ("transformer" if backbone else "hgrn")
    m = record["metrics"]
    assert 1 <= m["steps"] <= 2 and m["params"] > 0
    for key in ("val_acc_best", "test_acc_at_best_val", "test_acc_last"):
        assert 0.0 <= m[key] <= 1.0
    assert (run_dir / "config.yaml").exists() and (run_dir / "metrics.csv").exists()
    assert ("lower_bounds" in record) == (not backbone)


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.yaml") if "tiny" not in p.name))
def test_paper_config_builds_its_network(config):
    """The full-size configs parse, name a known task and build the network they describe (no data needed)."""
    spec = yaml.safe_load((CONFIGS / config).read_text())
    assert spec["run"]["task"] in TASKS
    init = dict(spec["model"]["init_args"])
    encoder_fields = {"num_classes": 10, "vocab_size": 256} if init.get("encoder", "token") == "token" else {
        "num_classes": 10, "in_channels": 3, "grid": (32, 32)}
    task_class = SequenceClassificationTask if spec["model"]["class_path"].endswith("SequenceClassificationTask") else None
    if task_class is None:
        from lra.task import RetrievalTask as task_class  # noqa: N813
    module = task_class(**init, **encoder_fields)
    params = sum(p.numel() for p in module.parameters())
    assert params > 1000
    hp = module.hparams
    source = (CONFIGS / config).read_text()
    assert "Source:" in source or "same harness" in source  # every config says where its numbers come from
    assert hp.d_model == init["d_model"] and hp.n_layers == init["n_layers"]
