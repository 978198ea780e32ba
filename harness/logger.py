"""A CSVLogger that keeps ``metrics.csv`` when a run resumes (Lightning's deletes the old file)."""
from __future__ import annotations

import csv
import os

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        # Instead of deleting an existing metrics.csv, adopt its columns and append to it. Steps redone
        # after a resume appear twice; readers keep the last row of a step.
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                header = next(csv.reader(f), [])
            self.metrics_keys = sorted(set(header))


class AppendingCSVLogger(CSVLogger):
    """CSVLogger writing ``<save_dir>/metrics.csv`` directly (no name/version folders), append-safe."""

    def __init__(self, save_dir: str | os.PathLike) -> None:
        super().__init__(save_dir=save_dir, name="", version="")

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment
