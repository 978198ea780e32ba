"""Run folders and caches that never lie and never collide (fast parts): the run-folder lock, records kept from
later failures, option checks, one-paragraph errors, evaluation shards under DDP, atomic cache entries, the
Pathfinder cache key and a read-only data root."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from harness.checks import OptionError, check_devices, check_option_ranges, check_task
from harness.distributed import EvalShardSampler
from harness.errors import paragraph, run_main
from harness.identity import RunIdentity
from harness.lock import RunLock, RunLockedError, lock_holder
from harness.records import RECORD_NAME, RunRecord, new_record, read_record
from helpers.lra_files import PATHFINDER_DIFFICULTY, write_listops, write_pathfinder
from lra.data.cache import ArrayCache, is_writable_dir

ROOT = Path(__file__).resolve().parent.parent


# -- the run-folder lock -----------------------------------------------------------------------------------
def test_a_second_holder_is_refused_with_the_holder_named(tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunLockedError, match=rf"in use by process {os.getpid()} on host "):
            RunLock(tmp_path / "run").acquire()
        assert lock_holder(tmp_path / "run")["pid"] == os.getpid()
    assert lock_holder(tmp_path / "run") is None
    RunLock(tmp_path / "run").acquire().release()  # free again after release


def test_the_lock_of_a_killed_process_is_stale_and_taken_over(tmp_path):
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]); from harness.lock import RunLock; "
            "lock = RunLock(sys.argv[2]).acquire(); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(ROOT), str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        assert lock_holder(tmp_path / "run")["pid"] == proc.pid
        with pytest.raises(RunLockedError, match=str(proc.pid)):
            RunLock(tmp_path / "run").acquire()
    finally:
        proc.kill()
        proc.wait()
    assert json.loads((tmp_path / "run" / ".lock").read_text())["pid"] == proc.pid  # the file is left behind...
    with RunLock(tmp_path / "run"):  # ...but it is stale: taken over at once
        assert lock_holder(tmp_path / "run")["pid"] == os.getpid()


# -- records -----------------------------------------------------------------------------------------------
def _record(status: str = "running") -> dict:
    record = new_record(RunIdentity("s", "listops", "hgrn", "v", 0), {})
    record["status"] = status
    return record


def test_a_complete_record_is_kept_and_a_later_failure_goes_beside_it(tmp_path):
    complete = {**_record("complete"), "metrics": {**_record()["metrics"], "test_acc_last": 0.5, "wall_time_s": 7.0}}
    (tmp_path / RECORD_NAME).write_text(json.dumps(complete))
    rec = RunRecord(tmp_path)
    rec.begin(_record(), resume=True)
    rec.progress(1, 10)
    assert read_record(tmp_path) == complete  # the running record does not replace it
    written = rec.fail("MissingDataError: no data", steps=10)
    assert read_record(tmp_path) == complete
    assert written.name.startswith("record.failed-") and written.parent == tmp_path
    failed = json.loads(written.read_text())
    assert failed["status"] == "failed" and "no data" in failed["failure"]
    assert failed["metrics"]["wall_time_s"] >= 7.0  # a resume counts the earlier time
    # a later fit that completes does replace it
    rec = RunRecord(tmp_path)
    rec.begin(_record(), resume=False)
    rec.complete()
    assert read_record(tmp_path)["status"] == "complete" and read_record(tmp_path)["metrics"]["wall_time_s"] < 7.0


def test_a_running_record_notes_progress_and_wall_time(tmp_path):
    rec = RunRecord(tmp_path)
    rec.begin(_record(), resume=False)
    time.sleep(0.05)
    rec.progress(2, 30)
    m = read_record(tmp_path)["metrics"]
    assert (m["epochs"], m["steps"]) == (2, 30) and m["wall_time_s"] >= 0.05
    resumed = RunRecord(tmp_path)
    resumed.begin(_record(), resume=True)
    assert read_record(tmp_path)["metrics"]["wall_time_s"] == pytest.approx(m["wall_time_s"])
    fresh = RunRecord(tmp_path)
    fresh.begin(_record(), resume=False)  # a new fit from scratch does not inherit the time
    assert read_record(tmp_path)["metrics"]["wall_time_s"] == 0.0


# -- option checks -----------------------------------------------------------------------------------------
def _cfg(model=None, data=None, trainer=None):
    from jsonargparse import Namespace

    return Namespace(model=Namespace(class_path="m.M", init_args=Namespace(**(model or {}))),
                     data=Namespace(class_path="d.D", init_args=Namespace(**(data or {}))),
                     trainer=Namespace(**(trainer or {})))


@pytest.mark.parametrize("group, name, value, allowed", [
    ("data", "limit_train", 0, "an integer >= 1, or null"),
    ("data", "max_length", -5, "an integer >= 1"),
    ("data", "max_length", 0, "an integer >= 1"),
    ("data", "batch_size", -2, "an integer >= 1"),
    ("model", "n_layers", 0, "an integer >= 1"),
    ("model", "d_model", 0, "an integer >= 1"),
    ("model", "dropout", 1.5, "a number in [0, 1)"),
])
def test_out_of_range_options_name_the_option_and_the_range(group, name, value, allowed):
    with pytest.raises(OptionError) as err:
        check_option_ranges(_cfg(**{group: {name: value}}))
    assert f"--{group}.init_args.{name} must be {allowed}" in str(err.value) and f"got {value!r}" in str(err.value)


def test_in_range_options_pass_and_trainer_limits_are_checked():
    check_option_ranges(_cfg(model={"d_model": 8, "n_layers": 1, "dropout": 0.0}, data={"limit_train": None},
                             trainer={"max_epochs": -1}))
    with pytest.raises(OptionError, match=r"--trainer.max_epochs must be an integer >= 1, or -1"):
        check_option_ranges(_cfg(trainer={"max_epochs": 0}))


def test_more_cpu_processes_than_cores_need_an_explicit_yes():
    cores = os.cpu_count() or 1
    with pytest.raises(OptionError, match=rf"asks for {cores + 6} CPU processes but this machine has {cores} cores"):
        check_devices({"accelerator": "cpu", "devices": cores + 6}, oversubscribe=False)
    check_devices({"accelerator": "cpu", "devices": cores + 6}, oversubscribe=True)
    check_devices({"accelerator": "cpu", "devices": "auto"}, oversubscribe=False)
    with pytest.raises(OptionError, match="--trainer.devices must be"):
        check_devices({"accelerator": "cpu", "devices": 0}, oversubscribe=False)


def test_the_task_must_match_the_data_module():
    class Data:
        task = "listops"

    check_task("listops", Data(), "lra.data.ListOpsDataModule")
    with pytest.raises(OptionError, match="run.task is 'text' but lra.data.ListOpsDataModule reads 'listops'"):
        check_task("text", Data(), "lra.data.ListOpsDataModule")


# -- one paragraph instead of a traceback ------------------------------------------------------------------
def test_user_errors_print_one_paragraph_and_debug_brings_the_traceback_back(monkeypatch, capsys):
    from harness.datasets import MissingDataError

    def failing(args):
        raise MissingDataError("/data/listops-1000/basic_test.tsv", "run `python -m lra.prepare listops`")

    monkeypatch.delenv("HGRN_DEBUG", raising=False)
    assert run_main(failing, ["fit"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: data not found: /data/listops-1000/basic_test.tsv")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 2 and "HGRN_DEBUG=1" in err
    with pytest.raises(MissingDataError):
        run_main(failing, ["fit", "--debug"])
    monkeypatch.setenv("HGRN_DEBUG", "1")
    with pytest.raises(MissingDataError):
        run_main(failing, ["fit"])
    monkeypatch.delenv("HGRN_DEBUG")

    def bug(args):
        raise KeyError("a bug, not a user error")

    with pytest.raises(KeyError):  # bugs keep their traceback
        run_main(bug, [])
    assert "\n" not in paragraph(ValueError("a\n  b")).split("\n")[0]


# -- evaluation under DDP ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, world", [(39, 2), (10, 3), (5, 5), (1000, 8)])
def test_evaluation_shards_cover_every_example_exactly_once(n, world):
    shards = [list(EvalShardSampler(range(n), num_replicas=world, rank=r)) for r in range(world)]
    assert sorted(i for s in shards for i in s) == list(range(n))
    assert [len(s) for s in shards] == [len(EvalShardSampler(range(n), num_replicas=world, rank=r)) for r in range(world)]
    with pytest.raises(ValueError, match="cannot be shared"):
        EvalShardSampler(range(world - 1), num_replicas=world, rank=0)


# -- cache entries ---------------------------------------------------------------------------------------------
def _save_many(directory: str, barrier, rounds: int, errors) -> None:
    for i in range(rounds):
        barrier.wait()
        try:
            arr = np.arange(1000, dtype=np.int64) * i
            ArrayCache(Path(directory), "entry", f"k{i}").save({"a": arr, "b": arr[::-1].copy()}, {"round": i})
        except Exception as err:  # noqa: BLE001 - counted and reported by the test
            errors.put(f"{type(err).__name__}: {err}")


def test_two_processes_saving_the_same_entries_concurrently(tmp_path):
    ctx = mp.get_context("fork")
    rounds = 200
    barrier, errors = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_save_many, args=(str(tmp_path), barrier, rounds, errors)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert [p.exitcode for p in procs] == [0, 0] and failures == []
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"entry-k{i}" for i in range(rounds))  # one entry per key, no temp folder left
    for i in (0, 57, rounds - 1):
        arrays, meta = ArrayCache(tmp_path, "entry", f"k{i}").load()
        assert meta["round"] == i and np.array_equal(arrays["a"], np.arange(1000) * i)
        assert np.array_equal(arrays["b"], (np.arange(1000) * i)[::-1])


def test_a_leftover_entry_without_meta_is_replaced(tmp_path):
    cache = ArrayCache(tmp_path, "entry", "k")
    cache.path.mkdir(parents=True)
    (cache.path / "a.npy").write_bytes(b"half")
    assert cache.load() is None
    assert cache.save({"a": np.arange(3)}, {})
    assert cache.load()[0]["a"].tolist() == [0, 1, 2]
    assert json.loads(cache.file("built_by.json").read_text())["pid"] == os.getpid()


def test_pathfinder_cache_notices_a_replaced_image(tmp_path):
    from PIL import Image

    from lra.data import PathfinderDataModule

    write_pathfinder(tmp_path, 32, 20, batches=1)
    broken = tmp_path / "pathfinder32" / PATHFINDER_DIFFICULTY / "imgs" / "0" / "sample_3.png"
    broken.write_bytes(b"")  # an empty PNG: skipped and counted
    with pytest.warns(UserWarning, match="1 empty PNG"):
        dm = PathfinderDataModule(tmp_path, decode_workers=1)
        assert dm._decoded[2].size == 19
    Image.fromarray(np.full((32, 32), 30, dtype=np.uint8)).save(broken)  # repaired in place
    dm = PathfinderDataModule(tmp_path, decode_workers=1)
    images, _, valid = dm._decoded
    assert valid.size == 20 and np.asarray(images[3]).max() == 30  # decoded again, not the cached failure


@contextmanager
def read_only(path: Path):
    """Make ``path`` unwritable, also for root (an immutable folder); skip where that is impossible."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("cannot make a folder read-only for root here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_data_root_caches_in_the_user_folder(tmp_path, monkeypatch):
    from lra.data import ListOpsDataModule, PathfinderDataModule
    import lra.prepare as prepare

    root = tmp_path / "data"
    write_pathfinder(root, 32, 20, batches=1)
    write_listops(root, dict.fromkeys(("train", "val", "test"), [("( [MAX 2 9 ] )", 9)]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    with read_only(root):
        assert not is_writable_dir(root / ".cache")
        for dm in (PathfinderDataModule(root, decode_workers=1), ListOpsDataModule(root)):
            with pytest.warns(UserWarning, match=f"the data root {root} is not writable"):
                dm.setup("fit")
            assert dm.cache_dir.is_relative_to(tmp_path / "user-cache") and len(dm.dataset("train")) > 0
        assert prepare.main(["pathfinder", "--root", str(root), "--quiet"]) == 0  # data there: nothing to write
        assert prepare.main(["pathx", "--root", str(root), "--quiet", "--size", "4"]) == 1  # a clear failure
    assert not (root / ".cache").exists()
