"""Aggregation, tables and plots for hgrn-bench, read only from run records.

Usage: ``python -m results --suite NAME [--runs DIR] [--out DIR] [--metric M] [--allow-unreadable]``
(defaults: runs root ``runs/<suite>``, output ``results/<suite>/``, metric ``test_acc_at_best_val``).

This package never imports training code (torch, lightning, kernels, models, lra, vision): its only
inputs are ``record.json`` files (docs/ARCHITECTURE.md section 4), the ``metrics.csv`` histories they point
to, and the published numbers in ``results/published.csv``.

Record fields relied on, beyond schema 1 (all optional):
- ``failure``: text saying why a run failed (status "failed"); shown in the README.
- ``lower_bounds``: the lower bound each layer used at the end of training, a list of L layers, each a
  list of D floats (HGRN runs); drawn per layer and per channel.
- ``history``: a path relative to the record's folder to a Lightning CSVLogger ``metrics.csv``
  (columns ``epoch, step`` and any of ``train_loss, train_acc, val_loss, val_acc``, also accepted with
  ``_epoch``/``_step`` suffixes or as ``train/loss`` etc.; rows may be sparse).
- ``versions.git``: listed in the README so a table can be traced to code.
- ``metrics.n_test``, ``metrics.n_val``: rows behind the test and validation accuracies; the mini-tier
  report (results/mini.py) puts a Wilson interval on a single run's accuracy from them.

Rules applied to records: every record.json below the runs root is read (any depth); malformed JSON,
a missing required field (schema, task, model, variant, seed, status), an unknown status or an accuracy
outside [0, 1] stops with an error naming the file, or with --allow-unreadable is listed in the README
as unreadable; two records of the same (task, model, variant, seed) always stop with an error. Only
complete runs enter means and standard deviations (sample std, ddof=1; none for one seed); running and
failed runs are counted and marked in the tables.

Suites whose file in results/suites/ says ``report: mini`` (demo, lower-bound-mini) get the mini-tier report
instead: models compared with each other, every accuracy with a 95% interval, and a paired comparison of
HGRN variants against cumsoftmax; never the published full-scale numbers.

Modules: records (loading), aggregate (over seeds), published (published numbers), tables (cell content),
intervals (Wilson, t and paired intervals), mini (mini-tier tables and summary), render (Markdown/LaTeX/CSV),
history (metrics.csv), plots, report (writes a suite's folder), __main__ (CLI).
"""
