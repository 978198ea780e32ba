"""Run records never lie and runs never collide, end to end through ``python -m lra fit``: the last checkpoint
is the final weights (also across a kill -9 and a resume), DDP metrics count every test row once, a second
trainer on a busy folder stops at once, a complete record survives a failing rerun, and bad input (wrong task,
missing or empty split, nonsense option) stops before the first step with a message that names it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from harness.checks import OptionError
from harness.cli import HarnessCLI
from harness.lock import RunLockedError
from helpers.lra_files import write_aan
from lra.__main__ import main
from lra.task import SequenceClassificationTask

ROOT = Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "lra" / "configs" / "listops-tiny.yaml")
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]), "PYTHONUNBUFFERED": "1"}


def run_cli(*args: str) -> HarnessCLI:
    return main(list(args))


def lra_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "lra", *args]


@pytest.fixture(scope="module")
def listops_root(tmp_path_factory) -> Path:
    from lra.prepare import main as prepare

    root = tmp_path_factory.mktemp("data")
    prepare(["listops", "--root", str(root), "--size", "1200", "--min-length", "20", "--max-length", "60", "--quiet",
             "--workers", "1"])
    return root


def small(root: Path) -> list[str]:
    return ["fit", "--config", CONFIG, "--data.init_args.root", str(root), "--data.init_args.max_length", "60",
            "--data.init_args.limit_train", "128", "--data.init_args.limit_val", "24", "--data.init_args.limit_test", "24",
            "--model.init_args.lower_bound", "none", *QUIET]


def read_record(run_dir: Path) -> dict:
    return json.loads((run_dir / "record.json").read_text())


def accuracy(ckpt: str | Path, dm) -> float:
    model = SequenceClassificationTask.load_from_checkpoint(ckpt, map_location="cpu").eval()
    correct = total = 0
    with torch.no_grad():
        for batch in dm.test_dataloader():
            correct += (model(batch).argmax(-1) == batch["y"]).sum().item()
            total += len(batch["y"])
    return correct / total


def comparable(record: dict) -> dict:
    """A record without what differs between two runs of the same training: time, folder, command, versions."""
    out = {k: v for k, v in record.items() if k not in ("config", "checkpoints", "versions")}
    out["metrics"] = {k: v for k, v in record["metrics"].items() if k != "wall_time_s"}
    return out


@pytest.mark.slow
def test_last_is_the_final_weights_and_a_killed_run_resumes_to_the_same_record(listops_root, tmp_path):
    # 4 steps per epoch, validation after epoch 2 only: the final epoch cannot improve on the best (the
    # no-improvement case, made certain), so the best checkpoint is epoch 2's and the final weights 4 steps newer.
    # (Not max_steps: Lightning 2.6 resumes an iteration-based run from an end-of-epoch checkpoint as finished.)
    args = [*small(listops_root), "--trainer.max_epochs", "3", "--trainer.check_val_every_n_epoch", "2"]
    straight = tmp_path / "straight"
    cli = run_cli(*args, "--run.dir", str(straight))
    record = read_record(straight)
    best, last = record["checkpoints"]["best"], record["checkpoints"]["last"]
    assert Path(best).name == "best-epoch1-step8.ckpt" and Path(last).name == "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == record["metrics"]["steps"] == 12
    assert record["metrics"]["test_acc_last"] == pytest.approx(accuracy(last, cli.datamodule), abs=1e-6)
    assert record["metrics"]["test_acc_at_best_val"] == pytest.approx(accuracy(best, cli.datamodule), abs=1e-6)

    # the same run, killed with SIGKILL at step 9 (after epoch 2's last.ckpt), then resumed with --ckpt_path last
    killed, flag = tmp_path / "killed", tmp_path / "paused"
    proc = subprocess.Popen(lra_command(*args, "--run.dir", str(killed), "--trainer.callbacks+=helpers.callbacks.PauseAtStep",
                                        "--trainer.callbacks.step", "9", "--trainer.callbacks.flag", str(flag)),
                            cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert flag.exists(), proc.stderr.read()[-3000:] if proc.poll() is not None else "never reached step 9"
        # a second trainer on the busy folder stops at once, naming the holder
        start = time.monotonic()
        with pytest.raises(RunLockedError, match=rf"in use by process {proc.pid} on host"):
            run_cli(*args, "--run.dir", str(killed), "--ckpt_path", "last")
        assert time.monotonic() - start < 60
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = read_record(killed)
    assert before["status"] == "running" and before["metrics"]["epochs"] == 2 and before["metrics"]["wall_time_s"] > 0
    start = time.monotonic()
    run_cli(*args, "--run.dir", str(killed), "--ckpt_path", "last")
    resumed_for = time.monotonic() - start
    after = read_record(killed)
    assert comparable(after) == comparable(record)
    # the killed process's time counts: what it had recorded plus (at most) the resumed process's
    assert before["metrics"]["wall_time_s"] < after["metrics"]["wall_time_s"] <= before["metrics"]["wall_time_s"] + resumed_for
    wa = torch.load(last, map_location="cpu", weights_only=False)["state_dict"]
    wb = torch.load(after["checkpoints"]["last"], map_location="cpu", weights_only=False)["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_two_process_ddp_counts_every_test_row_once(listops_root, tmp_path):
    run_dir, cache = tmp_path / "ddp", tmp_path / "cache"
    args = [*small(listops_root), "--data.init_args.limit_val", "23", "--data.init_args.limit_test", "23",
            "--data.init_args.cache_dir", str(cache), "--trainer.max_epochs", "1", "--trainer.devices", "2",
            "--trainer.strategy", "ddp", "--trainer.accelerator", "cpu", "--run.dir", str(run_dir)]
    proc = subprocess.Popen(lra_command(*args), cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, stderr = proc.communicate(timeout=400)
    assert proc.returncode == 0, stderr[-3000:]
    record = read_record(run_dir)
    assert record["status"] == "complete"
    from lra.data import ListOpsDataModule

    dm = ListOpsDataModule(listops_root, max_length=60, limit_test=23, limit_val=23, cache_dir=tmp_path / "cache2")
    assert len(dm.dataset("test")) == 23
    correct = round(accuracy(record["checkpoints"]["best"], dm) * 23)
    # the same count of the same 23 rows (k/23 in float32), not k/24 with a padded duplicate
    assert record["metrics"]["test_acc_at_best_val"] == pytest.approx(correct / 23, abs=1e-6)
    assert all(abs(record["metrics"]["test_acc_at_best_val"] - k / 24) > 1e-3 for k in range(25) if k / 24 != correct / 23)
    # the caches were built by rank 0 (the process started here; Lightning starts rank 1) in prepare_data
    entries = sorted(p for p in (cache / "listops").iterdir())
    assert [p.name.split("-")[0] for p in entries] == ["test", "train", "val"]
    assert {json.loads((p / "built_by.json").read_text())["pid"] for p in entries} == {proc.pid}


# -- bad input stops before the first step, with a message that names it -----------------------------------------
def test_a_failing_rerun_leaves_the_complete_record_in_place(listops_root, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    complete = {"schema": 1, "status": "complete", "task": "listops", "metrics": {"test_acc_last": 0.42, "wall_time_s": 9.0}}
    (run_dir / "record.json").write_text(json.dumps(complete))
    with pytest.raises(FileNotFoundError, match="lra.prepare listops"):
        run_cli(*small(tmp_path / "no-data"), "--run.dir", str(run_dir))
    assert read_record(run_dir) == complete
    (failed,) = run_dir.glob("record.failed-*.json")
    assert json.loads(failed.read_text())["status"] == "failed" and "no-data" in json.loads(failed.read_text())["failure"]


def test_a_task_that_does_not_match_the_data_is_refused(listops_root, tmp_path):
    with pytest.raises(OptionError, match="run.task is 'text' but lra.data.ListOpsDataModule reads 'listops'"):
        run_cli(*small(listops_root), "--run.task", "text", "--run.dir", str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def _copy_listops(src: Path, dst: Path, splits=("train", "val", "test")) -> Path:
    (dst / "listops-1000").mkdir(parents=True)
    for split in splits:
        name = f"basic_{split}.tsv"
        (dst / "listops-1000" / name).write_text((src / "listops-1000" / name).read_text())
    return dst


def test_a_missing_test_split_stops_the_run_before_training(listops_root, tmp_path):
    root = _copy_listops(listops_root, tmp_path / "data", splits=("train", "val"))
    run_dir = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="basic_test.tsv"):
        run_cli(*small(root), "--run.dir", str(run_dir), "--trainer.max_epochs", "3")
    record = read_record(run_dir)
    assert record["status"] == "failed" and record["metrics"]["steps"] == 0
    assert not (run_dir / "checkpoints").exists()


def test_an_empty_retrieval_test_file_stops_the_run_before_training(tmp_path):
    rows = [(str(i % 2), f"a{i}", f"b{i}", f"document {i} text", f"other {i} words") for i in range(40)]
    write_aan(tmp_path / "data", {"train": rows, "eval": rows, "test": []})
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=r"new_aan_pairs.test.tsv: no usable rows"):
        run_cli("fit", "--config", str(ROOT / "lra" / "configs" / "retrieval-tiny.yaml"), "--data.init_args.root",
                str(tmp_path / "data"), "--run.dir", str(run_dir), *QUIET)
    record = read_record(run_dir)
    assert record["status"] == "failed" and record["metrics"]["steps"] == 0


@pytest.mark.parametrize("option, value, allowed", [
    ("--data.init_args.limit_train", "0", "an integer >= 1, or null"),
    ("--data.init_args.max_length", "-5", "an integer >= 1"),
    ("--data.init_args.max_length", "0", "an integer >= 1"),
    ("--data.init_args.batch_size", "-4", "an integer >= 1"),
    ("--model.init_args.n_layers", "0", "an integer >= 1"),
    ("--model.init_args.d_model", "0", "an integer >= 1"),
])
def test_nonsense_options_are_refused_naming_the_option_and_range(listops_root, tmp_path, option, value, allowed):
    with pytest.raises(OptionError, match=rf"option {option} must be {allowed}.*got {value}"):
        run_cli(*small(listops_root), option, value, "--run.dir", str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_the_command_line_prints_one_paragraph_not_a_traceback(tmp_path):
    cmd = lra_command("fit", "--config", CONFIG, "--data.init_args.root", str(tmp_path / "nowhere"),
                      "--run.dir", str(tmp_path / "run"), *QUIET)
    done = subprocess.run(cmd, cwd=ROOT, env={**ENV, "HGRN_DEBUG": ""}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"error: data not found: {tmp_path / 'nowhere'}. To make it ready: the data root does not exist; run " \
           f"`python -m lra.prepare listops --root {tmp_path / 'nowhere'}`" in done.stderr


def test_run_all_never_starts_a_run_whose_folder_is_locked(tmp_path, capsys):
    import yaml

    sys.path.insert(0, str(ROOT))
    import run_all
    from harness.lock import RunLock

    suite = {"name": "locked", "runs": [{"task": "listops", "entry": "lra", "config": "lra/configs/listops-tiny.yaml",
                                         "model": "hgrn", "variant": "cumsoftmax"}]}
    (tmp_path / "locked.yaml").write_text(yaml.safe_dump(suite))
    run_dir = tmp_path / "runs" / "locked" / "listops" / "hgrn-cumsoftmax" / "seed0"
    with RunLock(run_dir):
        code = run_all.main(["--suite", str(tmp_path / "locked.yaml"), "--runs-root", str(tmp_path / "runs"),
                             "--no-prepare", "--no-aggregate"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"skip listops/hgrn-cumsoftmax/seed0: its folder is in use by process {os.getpid()}" in out
    assert not (run_dir / "run.log").exists()  # nothing was started
