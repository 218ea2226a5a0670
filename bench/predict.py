"""``bench predict``: predict new structures with the models that cells saved (:mod:`bench.models`).

    bench predict my_cifs/ --run-id 3f2a...                         # one cell's model
    bench predict new.extxyz --experiment quick --task matbench_jdft2d --architecture cgcnn \\
        --variant distance --fold 0 --seed 0 --output preds.csv
    bench predict new.extxyz --experiment quick --task matbench_jdft2d --architecture cgcnn \\
        --variant distance --ensemble                              # every fold and seed: mean, std

Structures come from CIF, POSCAR, extended XYZ or matminer JSON files (or folders of them;
see :mod:`bench.structure_io`). Each model's graphs are built with the variant, cutoff and
neighbour cap it was trained on. The CSV has one row per structure: ``id``, ``source`` (the
file), ``y_pred`` (target units for regression, class-1 probability for classification) and,
for an ensemble, ``y_std`` (population std over the models) and ``n_models``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from bench.models import SavedModel, fetch_run_model, load_model

_CELL_FILTER = "tags.`bench.kind` = 'cell' and attributes.status = 'FINISHED'"


def _tag(run, name: str) -> str | None:
    return run.data.tags.get(f"bench.{name}")


def find_cell_runs(tracker, task: str, architecture: str, variant: str, fold: int | None = None,
                   seed: int | None = None, config_hash: str | None = None) -> list:
    """Finished cell runs of ``tracker``'s experiment matching the given fields (None = any).

    Runs of several configurations (config hashes) never mix: that is an error listing them.
    """
    filt = (f"{_CELL_FILTER} and tags.`bench.task` = '{task}' and tags.`bench.architecture` = '{architecture}' "
            f"and tags.`bench.variant` = '{variant}'")
    runs = [r for r in tracker.search(filt)
            if (fold is None or _tag(r, "fold") == str(fold)) and (seed is None or _tag(r, "seed") == str(seed))
            and (config_hash is None or _tag(r, "config_hash") == config_hash)]
    what = f"{task}|{architecture}|{variant}" + (f"|fold{fold}" if fold is not None else "") + \
        (f"|seed{seed}" if seed is not None else "")
    if not runs:
        raise ValueError(f"no finished cell {what} in experiment {tracker.experiment_name!r} "
                         f"at {tracker.uri}" + (f" with config hash {config_hash}" if config_hash else ""))
    hashes = defaultdict(list)
    for r in runs:
        hashes[_tag(r, "config_hash")].append(r)
    if len(hashes) > 1:
        lines = "\n".join(f"  --config-hash {h}: {len(rs)} run(s), newest started "
                          f"{pd.Timestamp(max(r.info.start_time for r in rs), unit='ms'):%Y-%m-%d %H:%M}"
                          for h, rs in sorted(hashes.items(), key=lambda kv: str(kv[0])))
        raise ValueError(f"cells {what} of experiment {tracker.experiment_name!r} were trained with several "
                         f"configurations; choose one:\n{lines}")
    return sorted(runs, key=lambda r: (int(_tag(r, "fold") or 0), int(_tag(r, "seed") or 0)))


def select_runs(args: argparse.Namespace, tracking_uri: str) -> list:
    """The cell runs whose models predict: one (``--run-id`` or a full cell), or an ensemble."""
    from mlflow.tracking import MlflowClient

    from bench.tracking import Tracker

    if args.run_id:
        client = MlflowClient(tracking_uri)
        run = client.get_run(args.run_id)
        if _tag(run, "kind") != "cell":
            raise ValueError(f"run {args.run_id} is a {_tag(run, 'kind') or 'non-bench'} run, not a cell")
        if not args.ensemble:
            return [run]
        experiment = client.get_experiment(run.info.experiment_id).name
        return find_cell_runs(Tracker(experiment, tracking_uri), _tag(run, "task"), _tag(run, "architecture"),
                              _tag(run, "variant"), config_hash=_tag(run, "config_hash"))
    missing = [flag for flag, value in (("--experiment", args.experiment), ("--task", args.task),
                                        ("--architecture", args.architecture), ("--variant", args.variant))
               if not value]
    if missing:
        raise ValueError(f"name the model with --run-id, or with {', '.join(missing)} (and --fold/--seed, "
                         "or --ensemble)")
    tracker = Tracker(args.experiment, tracking_uri)
    if args.ensemble:
        return find_cell_runs(tracker, args.task, args.architecture, args.variant, args.fold, args.seed,
                              args.config_hash)
    runs = find_cell_runs(tracker, args.task, args.architecture, args.variant, args.fold, args.seed, args.config_hash)
    if len(runs) > 1:
        cells = ", ".join(f"fold{_tag(r, 'fold')}/seed{_tag(r, 'seed')}" for r in runs)
        raise ValueError(f"{len(runs)} cells match ({cells}); choose one with --fold and --seed, "
                         "or average them with --ensemble")
    return runs


def load_run_models(runs: list, tracking_uri: str, device: str = "cpu") -> list[SavedModel]:
    """Download and rebuild the saved model of every run."""
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = MlflowClient(tracking_uri)
    models = []
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        for k, run in enumerate(runs):
            folder = fetch_run_model(client, run, tracking_uri, Path(tmp) / str(k))
            models.append(load_model(folder, device))
    return models


def predict_structures(models: list[SavedModel], records: list, batch_size: int = 64, device: str = "cpu",
                       progress: bool = False) -> tuple[pd.DataFrame, dict[str, float]]:
    """Predictions of every model for every record -> (frame, timings in s).

    Graphs are built once per distinct (variant, cutoff, max_neighbors) among the models.
    """
    import torch
    from tqdm.auto import tqdm

    from bench.graphs import GraphError, build_graph
    from bench.training import predict

    kinds = {m.problem_type for m in models}
    if len(kinds) != 1:
        raise ValueError(f"the models mix problem types {sorted(kinds)}; they cannot be averaged")
    timings = {"graphs_s": 0.0, "models_s": 0.0}
    graphs: dict[tuple, list] = {}
    for settings in dict.fromkeys(m.graph for m in models):
        variant, cutoff, max_neighbors = settings
        start = time.perf_counter()
        built = []
        for r in tqdm(records, desc=f"graphs {variant}", disable=not progress, leave=False):
            try:
                built.append(build_graph(r.structure, variant, cutoff, max_neighbors, structure_id=r.id))
            except GraphError as err:
                raise GraphError(f"{r.source}: structure {r.index}: {err}") from err
        graphs[settings] = built
        timings["graphs_s"] += time.perf_counter() - start
    start = time.perf_counter()
    preds = np.stack([predict(m.model, graphs[m.graph], m.scaler, m.problem_type, batch_size, torch.device(device))
                      for m in models])  # [n_models, n_structures]
    timings["models_s"] = time.perf_counter() - start
    frame = pd.DataFrame({"id": [r.id for r in records], "source": [str(r.source) for r in records],
                          "y_pred": preds.mean(axis=0)})
    if len(models) > 1:
        frame["y_std"] = preds.std(axis=0)
        frame["n_models"] = len(models)
    return frame, timings


def cmd_predict(args: argparse.Namespace) -> None:
    from bench import defaults
    from bench.structure_io import read_structures
    from bench.training import configure_torch

    tracking_uri = args.tracking_uri or defaults.tracking_uri()
    device = configure_torch(args.threads, args.device)
    start = time.perf_counter()
    records = read_structures(args.structures, args.format)
    read_s = time.perf_counter() - start
    runs = select_runs(args, tracking_uri)
    models = load_run_models(runs, tracking_uri, device)
    frame, timings = predict_structures(models, records, args.batch_size, device, progress=not args.no_progress)
    if args.output in (None, "-"):
        frame.to_csv(sys.stdout, index=False)
    else:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.output, index=False)
    task = models[0].spec["task"]
    what = "class-1 probability" if models[0].problem_type == "classification" else \
        f"{task.get('target') or 'target'} ({task.get('unit') or 'unit unknown'})"
    print(f"predicted {what} for {len(records)} structure(s) with {len(models)} model(s) "
          f"[{', '.join(m.label() for m in models[:5])}{' ...' if len(models) > 5 else ''}]: "
          f"read {read_s:.1f} s, graphs {timings['graphs_s']:.1f} s, models {timings['models_s']:.1f} s"
          + (f"; wrote {args.output}" if args.output not in (None, "-") else ""), file=sys.stderr)


def add_predict_command(sub) -> None:
    """Register ``bench predict`` on the main CLI's subparsers."""
    p = sub.add_parser("predict", help="predict structures (CIF, POSCAR, extxyz, matminer JSON) with saved cell models",
                       description=__doc__.split("\n\n", 1)[0])
    p.add_argument("structures", nargs="+", help="structure files or folders of them")
    p.add_argument("--format", choices=["cif", "poscar", "extxyz", "json"], help="force a format (default: by name)")
    p.add_argument("--run-id", help="MLflow run id of a cell")
    p.add_argument("--experiment", help="MLflow experiment of the cells (e.g. quick)")
    p.add_argument("--task")
    p.add_argument("--architecture")
    p.add_argument("--variant")
    p.add_argument("--fold", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--config-hash", help="choose among cells trained with several configurations")
    p.add_argument("--ensemble", action="store_true",
                   help="average every fold and seed of the cell's configuration, or those --fold/--seed "
                        "leave open (adds y_std, n_models)")
    p.add_argument("--output", "-o", help="CSV file (default: standard output)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else mlflow.db in the current directory)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (architectures from plugins)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_predict)
