"""Find and read run records (`record.json`) into one long pandas DataFrame, one row per run.

Reading is strict: a record that cannot be parsed or that lacks a required field raises
`RecordError` naming the file and the field, unless the caller asks to collect such files as
unreadable instead, in which case they are returned (and reported), never dropped silently.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

# The record contract (file name, schemas, statuses, fields) is the harness's; this module only reads it.
from harness.identity import (
    ACCURACY_METRICS,
    IDENTITY_FIELDS,
    METRIC_FIELDS,
    RECORD_NAME,
    ROW_COUNT_METRICS,
    STATUSES,
    SUPPORTED_SCHEMAS,
)

# Columns of the long table, in order; lower_bounds holds an (L, D) list of lists or None. The row counts
# (n_test, n_val) are absent in older records: NaN then.
COLUMNS = (
    list(IDENTITY_FIELDS) + ["status", "failure"]
    + list(METRIC_FIELDS)
    + ["history_path", "lower_bounds", "git", "torch", "lightning", "record_path", "run_dir"]
)


class RecordError(ValueError):
    """A record file that cannot be used; the message names the file and what to do."""


@dataclass
class LoadResult:
    runs: pd.DataFrame
    unreadable: list[tuple[Path, str]] = field(default_factory=list)


def find_record_files(root: Path) -> list[Path]:
    """Every record.json below `root`, at any depth, in a stable order."""
    return sorted(p for p in Path(root).rglob(RECORD_NAME) if p.is_file())


def _require(rec: dict[str, Any], key: str, path: Path, kind: type | tuple[type, ...]) -> Any:
    if key not in rec or rec[key] is None:
        raise RecordError(f"{path}: field '{key}' is missing; every record needs it (docs/ARCHITECTURE.md section 4).")
    value = rec[key]
    # bool is an int in Python; a seed or schema of `true` is still a bad record.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RecordError(f"{path}: field '{key}' is {value!r}; expected {getattr(kind, '__name__', kind)}.")
    return value


def _number(value: Any, path: Path, name: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"{path}: '{name}' is {value!r}; expected a number or null.")
    return float(value)


def _lower_bounds(value: Any, path: Path) -> list[list[float]] | None:
    if value is None:
        return None
    ok = isinstance(value, list) and len(value) > 0 and all(isinstance(row, list) and row for row in value)
    if not ok:
        raise RecordError(f"{path}: 'lower_bounds' must be a non-empty list of layers, each a non-empty list of floats.")
    width = len(value[0])
    rows: list[list[float]] = []
    for k, row in enumerate(value):
        if len(row) != width:
            raise RecordError(
                f"{path}: 'lower_bounds' layer {k} has {len(row)} channels but layer 0 has {width}; "
                "every layer must report one bound per channel."
            )
        rows.append([_number(v, path, f"lower_bounds[{k}]") for v in row])
    return rows


def parse_record(rec: Any, path: Path) -> dict[str, Any]:
    """Validate one decoded record and flatten it into a row of the long table."""
    if not isinstance(rec, dict):
        raise RecordError(f"{path}: the file holds {type(rec).__name__}, not a JSON object.")
    schema = _require(rec, "schema", path, int)
    if schema not in SUPPORTED_SCHEMAS:
        raise RecordError(f"{path}: schema {schema} is not supported (known: {SUPPORTED_SCHEMAS}); update results/records.py.")
    row: dict[str, Any] = {}
    for name in IDENTITY_FIELDS:
        if name == "suite":  # optional: the folder a record lies in is what results/ files it under
            row[name] = rec.get(name)
        else:
            row[name] = _require(rec, name, path, int if name == "seed" else str)
    row["status"] = _require(rec, "status", path, str)
    if row["status"] not in STATUSES:
        raise RecordError(f"{path}: status {row['status']!r} is not one of {STATUSES}.")
    failure = rec.get("failure")
    row["failure"] = str(failure) if failure is not None else None

    metrics = rec.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise RecordError(f"{path}: 'metrics' must be a JSON object.")
    for name in METRIC_FIELDS:
        row[name] = _number(metrics.get(name), path, f"metrics.{name}")
    for name in ACCURACY_METRICS:
        v = row[name]
        # Accuracies are fractions; a value like 88.7 means someone wrote percent, which would be 100x off here.
        if not math.isnan(v) and not 0.0 <= v <= 1.0:
            raise RecordError(f"{path}: metrics.{name} = {v} is outside [0, 1]; accuracies must be fractions, not percent.")
    for name in ROW_COUNT_METRICS:
        v = row[name]
        if not math.isnan(v) and (v < 1 or v != int(v)):
            raise RecordError(f"{path}: metrics.{name} = {v} is not a positive whole number of rows.")

    history = rec.get("history")
    row["history_path"] = str((path.parent / history).resolve()) if isinstance(history, str) and history else None
    row["lower_bounds"] = _lower_bounds(rec.get("lower_bounds"), path)
    versions = rec.get("versions") if isinstance(rec.get("versions"), dict) else {}
    for name in ("git", "torch", "lightning"):
        row[name] = str(versions[name]) if versions.get(name) is not None else None
    row["record_path"] = str(path)
    row["run_dir"] = str(path.parent)
    return row


def read_record(path: Path) -> dict[str, Any]:
    """Read and validate one record file; raises RecordError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RecordError(f"{path}: cannot be read ({e}).") from e
    try:
        rec = json.loads(text)
    except json.JSONDecodeError as e:
        raise RecordError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}). "
            "Rerun that run, delete the file, or pass --allow-unreadable to report it and go on."
        ) from e
    return parse_record(rec, path)


def load_runs(root: Path, *, allow_unreadable: bool = False) -> LoadResult:
    """Read every record below `root` into the long table.

    With allow_unreadable, records that fail to parse are returned in `unreadable` (path, reason)
    instead of raising; duplicates of a (task, model, variant, seed) always raise, because counting
    one run twice would change the means.
    """
    root = Path(root)
    if not root.is_dir():
        raise RecordError(f"{root}: runs folder does not exist; run the suite first or pass --runs DIR.")
    rows: list[dict[str, Any]] = []
    unreadable: list[tuple[Path, str]] = []
    for path in find_record_files(root):
        try:
            rows.append(read_record(path))
        except RecordError as e:
            if not allow_unreadable:
                raise
            unreadable.append((path, str(e)))

    seen: dict[tuple, str] = {}
    for row in rows:
        key = (row["task"], row["model"], row["variant"], row["seed"])
        if key in seen:
            raise RecordError(
                f"{row['record_path']} and {seen[key]} both record task={key[0]} model={key[1]} "
                f"variant={key[2]} seed={key[3]}; remove one so the run is not counted twice."
            )
        seen[key] = row["record_path"]

    runs = pd.DataFrame(rows, columns=COLUMNS)
    runs["seed"] = runs["seed"].astype("int64")
    return LoadResult(runs=runs, unreadable=unreadable)
