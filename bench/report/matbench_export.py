"""Export one (architecture, variant) of a grid as a Matbench v0.1 submission.

Layout, as the matbench repository expects under ``benchmarks/`` (its submission test
checks it): ``matbench_v0.1_<name>/`` holding ``results.json.gz`` (a ``MatbenchBenchmark``
with every fold recorded through ``MatbenchTask.record``, so fold keys, ids and scores are
Matbench's own), ``info.json`` (authors, algorithm, algorithm_long, bibtex_refs, notes,
requirements) and a runner source file ``run.py``. ``results.json.gz`` is gzip-compressed
JSON as in the repository; the released matbench 0.6 ``from_file`` reads only plain JSON
(the repository's newer one gunzips ``*.gz``), so :func:`load_submission` handles both.
"""
from __future__ import annotations

import gzip
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bench.report.runs import read_predictions

RESULTS_FILE, INFO_FILE, RUNNER_FILE, CONFIG_FILE = "results.json.gz", "info.json", "run.py", "config.yaml"
N_FOLDS = 5


class ExportError(ValueError):
    """The grid cannot be exported as a (complete, valid) Matbench submission."""


def _check_task(task: str, data) -> None:
    from tasks import MATBENCH_TASKS
    from tasks.matbench import FOLD_SOURCE_MATBENCH

    if task not in MATBENCH_TASKS:
        raise ExportError(f"{task} is not a Matbench v0.1 task and is never exported as a Matbench result; "
                          f"exportable tasks: {', '.join(MATBENCH_TASKS)}")
    if not data.verified or data.fold_source != FOLD_SOURCE_MATBENCH:
        raise ExportError(f"{task}: the runs used {'UNVERIFIED data' if not data.verified else 'non-Matbench folds'} "
                          f"({data.source}); only Matbench's own data and folds can be submitted")


def select_runs(frame: pd.DataFrame, task: str, architecture: str, variant: str, seed: int) -> pd.DataFrame:
    """The one finished run per fold of (task, architecture, variant, seed); raises unless all 5 folds exist."""
    sub = frame[(frame["task"] == task) & (frame["architecture"] == architecture)
                & (frame["variant"] == variant) & (frame["seed"] == seed)] if not frame.empty else frame
    have = sorted(int(f) for f in set(sub["fold"])) if not sub.empty else []
    missing = [f for f in range(N_FOLDS) if f not in have]
    if missing:
        raise ExportError(f"{task} {architecture}/{variant} seed {seed}: folds {missing} have no finished cell run "
                          f"(found {have or 'none'}); a Matbench submission needs all {N_FOLDS} folds. "
                          "Run `bench ablation` with the same options to finish them, then export again.")
    return sub.sort_values("fold").reset_index(drop=True)


def validation_ranking(frame: pd.DataFrame, tasks: list[str], seed: int,
                       candidates: list[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Rank (architecture, variant) pairs for export by VALIDATION scores only, best first.

    Per task, each pair's mean ``best_val_score`` (the early-stopping score on the validation
    split carved from each outer training fold; lower is better) over its folds gives a rank;
    pairs are ordered by mean rank over ``tasks``, ties by the mean over tasks of the score
    relative to the task's best (``mean_val_relative``), then by name. Test scores are never read,
    so choosing the submission this way does not select on the test folds. Pairs missing a
    task are dropped; ``candidates`` restricts the pairs considered.
    """
    from bench.cells import DUMMY

    sub = frame[(frame["seed"] == seed) & (frame["architecture"] != DUMMY) & frame["task"].isin(tasks)]
    if candidates is not None:
        sub = sub[[(a, v) in set(candidates) for a, v in zip(sub["architecture"], sub["variant"])]]
    if sub.empty or "best_val_score" not in sub:
        raise ExportError(f"no finished cells with a validation score for seed {seed} in {', '.join(tasks)}")
    means = sub.groupby(["task", "architecture", "variant"])["best_val_score"].mean().unstack("task")
    means = means.dropna(subset=[t for t in tasks if t in means.columns])
    if means.empty or any(t not in means.columns for t in tasks):
        raise ExportError(f"no (architecture, variant) has cells on every task of {', '.join(tasks)}")
    ranks = means[tasks].rank(method="min").add_suffix("_val_rank")
    table = pd.concat([means[tasks].add_suffix("_val_score"), ranks], axis=1)
    table["mean_val_rank"] = ranks.mean(axis=1)
    table["mean_val_relative"] = (means[tasks] / means[tasks].min()).mean(axis=1)
    order = ["mean_val_rank", "mean_val_relative", "architecture", "variant"]
    return table.reset_index().sort_values(order).reset_index(drop=True)


def record_task(task: str, data, runs: pd.DataFrame, client):
    """A ``MatbenchTask`` with each fold's predictions.csv recorded in the order of the fold's test ids."""
    from tasks import matbench_recorder

    logging.getLogger("matbench").setLevel(logging.WARNING)
    recorder = matbench_recorder(data)
    truth = dict(zip(data.ids, data.targets))
    for run in runs.itertuples():
        fold = int(run.fold)
        ids = list(recorder.validation[recorder.folds_map[fold]].test)
        preds = read_predictions(client, run.run_id).set_index("id")
        if set(preds.index) != set(ids) or len(preds) != len(ids):
            raise ExportError(f"{task} fold {fold}: predictions.csv of run {run.run_id} does not hold exactly "
                              "the fold's Matbench test ids")
        preds = preds.loc[ids]
        if not np.allclose(preds["y_true"].to_numpy(float), [truth[i] for i in ids], rtol=0, atol=1e-9):
            raise ExportError(f"{task} fold {fold}: y_true in run {run.run_id} differs from the data's targets")
        recorder.record(fold, preds["y_pred"].to_numpy(dtype=float),
                        params={"cell_key": run.cell_key})
        ours = getattr(run, "test_mae", None) if data.problem_type == "regression" else None
        theirs = recorder.results[recorder.folds_map[fold]]["scores"].get("mae")
        if ours is not None and not np.isclose(ours, theirs, rtol=1e-9, atol=1e-12):
            raise ExportError(f"{task} fold {fold}: Matbench scores MAE {theirs} but the run logged {ours}")
    return recorder


def _first_line(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


def build_info(cfg, architecture: str, variant: str, seed: int, runs: pd.DataFrame, authors: str,
               algorithm: str, notes: str = "") -> dict:
    """info.json: the keys Matbench's submission test requires, filled from the registry and the runs' tags."""
    import architectures
    from bench.graphs import VARIANTS
    from tasks.matbench import matbench_metadata

    long = [f"A '{architecture}' graph neural network trained with the crystal-periodicity-bench suite, "
            f"edge variant '{variant}'."]
    if architecture in architectures.REGISTRY:
        spec = architectures.REGISTRY.get(architecture)
        long.append(_first_line(sys.modules[spec.cls.__module__].__doc__))
        long.append(f"Hyperparameters: {json.dumps(cfg.model_hparams(architecture), sort_keys=True)}.")
    if variant in VARIANTS:
        long.append(f"Edges ({variant}): {_first_line(VARIANTS.get(variant).__doc__)}")
    train = cfg.train.model_dump(exclude={"device", "num_threads"})
    long.append(f"Graphs: cutoff {cfg.graph.cutoff} Å, neighbour cap {cfg.graph.max_neighbors}. Training per fold: "
                f"{json.dumps(train, sort_keys=True)}; the validation split is carved from the outer training "
                f"fold only; seed {seed}; one model per fold, no test data used for selection.")
    for task, own in sorted(cfg.budget_for.items()):
        if task in cfg.tasks:
            long.append(f"On {task} the epoch cap and patience are {json.dumps(own.model_dump(exclude_none=True))}.")
    bibtex: list[str] = []
    for task in cfg.tasks:
        bibtex += [b for b in matbench_metadata()[task]["bibtex_refs"] if b not in bibtex]
    versions = {k.removeprefix("version."): v for k, v in runs.iloc[0].items()
                if isinstance(k, str) and k.startswith("version.") and isinstance(v, str)}
    requirements = [f"{'torch-geometric' if k == 'torch_geometric' else k}=={v}"
                    for k, v in sorted(versions.items()) if k != "python" and v != "absent"]
    commits = sorted(set(runs["git_commit"].dropna())) if "git_commit" in runs else []
    hashes = sorted(set(runs["dataset_sha256"].dropna())) if "dataset_sha256" in runs else []
    auto = (f"Exported from the run records of experiment '{cfg.experiment}' by `bench export-matbench`; config hash "
            f"{', '.join(sorted(set(runs['config_hash'])))}; git commit(s) {', '.join(commits)}; dataset sha256 "
            f"{', '.join(hashes)}; python {versions.get('python', '?')}.")
    return {"authors": authors, "algorithm": algorithm, "algorithm_long": " ".join(long),
            "bibtex_refs": bibtex, "notes": " ".join(x for x in (notes, auto) if x),
            "requirements": {"python": requirements}}


RUNNER = '''"""Runner of the Matbench submission {name} (written by `bench export-matbench`).

Reproduces every cell with the crystal-periodicity-bench suite (`pip install -e .` in its checkout):
trains one model per Matbench fold from {config} and rewrites this submission from the
cells' run records. Finished cells are never recomputed, so rerunning resumes.
"""
import sys
import tempfile
from pathlib import Path

from bench.cli import main as bench_main

HERE = Path(__file__).resolve().parent
GRID = ["--profile", str(HERE / "{config}"), "--tasks", "{tasks}", "--architectures", "{architecture}",
        "--variants", "{variant}", "--seeds", "{seed}", "--experiment", "{experiment}"]
AUTHORS = {authors!r}
NOTES = {notes!r}

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:  # this sub-grid's tables must not replace the full grid's
        code = bench_main(["ablation", *GRID, "--results-dir", scratch])
        code = code or bench_main(["export-matbench", *GRID, "--architecture", "{architecture}", "--variant",
                                    "{variant}", "--seed", "{seed}", "--name", "{name}", "--out", str(HERE.parent),
                                    "--results-dir", scratch, "--authors", AUTHORS, "--notes", NOTES])
    sys.exit(code)
'''


def export_matbench(cfg, architecture: str, variant: str, out_root: Path, results_dir: Path | None = None,
                    seed: int | None = None, name: str | None = None, authors: str = "crystal-periodicity-bench",
                    notes: str = "") -> Path:
    """Write ``out_root/matbench_v0.1_<name>/`` for (architecture, variant, seed) over ``cfg.tasks``.

    Raises :class:`ExportError` for a non-Matbench task, a missing fold, or any inconsistency;
    nothing is written then. Predictions come from the grid's run records under
    ``results_dir/<experiment>/runs/`` (default ``results/``).
    """
    from matbench.bench import MatbenchBenchmark

    from bench.cells import load_task
    from bench.report.runs import grid_records

    from tasks import MATBENCH_TASKS

    seed = cfg.seeds[0] if seed is None else seed
    for task in cfg.tasks:  # before loading anything: a non-Matbench task is never exported
        if task not in MATBENCH_TASKS:
            _check_task(task, None)
    datas = {task: load_task(task, cfg) for task in cfg.tasks}
    for task, data in datas.items():
        _check_task(task, data)
    grid = grid_records(cfg, results_dir)
    selected = {task: select_runs(grid.frame, task, architecture, variant, seed) for task in cfg.tasks}
    client = grid.records
    logging.getLogger("matbench").setLevel(logging.WARNING)
    mb = MatbenchBenchmark(autoload=False, subset=list(cfg.tasks))
    for task in cfg.tasks:
        mb.tasks_map[task] = record_task(task, datas[task], selected[task], client)
    errors = mb.validate()
    if errors or not mb.is_recorded:
        raise ExportError(f"the benchmark does not validate: {errors or 'not every fold recorded'}")
    all_runs = pd.concat(selected.values(), ignore_index=True)
    mb.add_metadata({"suite": "crystal-periodicity-bench", "architecture": architecture, "variant": variant,
                     "seed": seed, "experiment": cfg.experiment,
                     "config_hash": ",".join(sorted(set(all_runs["config_hash"])))})
    name = name or f"cpb_{architecture}_{variant}"
    out = Path(out_root) / f"matbench_v0.1_{name}"
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(out / RESULTS_FILE, "wt", encoding="utf-8") as fh:
        json.dump(mb.as_dict(), fh)
    info = build_info(cfg, architecture, variant, seed, all_runs, authors, algorithm=name, notes=notes)
    (out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    (out / CONFIG_FILE).write_text(yaml.safe_dump(cfg.model_dump(), sort_keys=False))
    (out / RUNNER_FILE).write_text(RUNNER.format(name=name, config=CONFIG_FILE, tasks=",".join(cfg.tasks),
                                                 architecture=architecture, variant=variant, seed=seed,
                                                 experiment=cfg.experiment, authors=authors, notes=notes))
    return out


def load_submission(path: Path):
    """``MatbenchBenchmark`` from a results file, gzip-compressed or plain JSON (what ``from_file`` does)."""
    from matbench.bench import MatbenchBenchmark

    raw = Path(path).read_bytes()
    text = gzip.decompress(raw).decode("utf-8") if raw[:2] == b"\x1f\x8b" else raw.decode("utf-8")
    return MatbenchBenchmark.from_dict(json.loads(text))


def describe_submission(folder: Path, root: Path) -> str:
    """One Markdown list item for ``folder``: link, what it exports, Matbench's own scores, how it was chosen."""
    folder = Path(folder)
    logging.getLogger("matbench").setLevel(logging.WARNING)
    mb = load_submission(folder / RESULTS_FILE)
    meta = mb.user_metadata or {}
    scores = []
    for task, t in mb.tasks_map.items():
        metric = "mae" if t.metadata.task_type == "regression" else "rocauc"
        s = t.scores[metric]
        scores.append(f"{task} {metric} {float(s['mean']):.4g} ± {float(s['std']):.4g}")
    info = json.loads((folder / INFO_FILE).read_text()) if (folder / INFO_FILE).exists() else {}
    chosen = [x.strip() + "." for x in str(info.get("notes", "")).split(". ") if x.startswith("Chosen among")]
    what = f"{meta.get('architecture', '?')}/{meta.get('variant', '?')}, seed {meta.get('seed', '?')}"
    return (f"- [{folder.name}]({folder.relative_to(root).as_posix()}/): {what}; scored by Matbench "
            f"(std over folds with ddof=0): {'; '.join(scores)}." + (f" {chosen[0]}" if chosen else ""))
