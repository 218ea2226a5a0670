"""The budget pilot: long fits whose learning curves choose a grid's training budget.

For every task x architecture of a profile, one fit on the *training rows* of one outer fold
(``pilot.fold``, ``pilot.seed``, ``pilot.variant``), with no early stopping, for
``pilot.epochs`` epochs. The fold's training rows are split three ways with the fit's seed:
a pilot hold-out (``pilot.holdout_fraction``) that scores the curves, then the cell's usual
validation split (``train.val_fraction``) from the rest, and the remainder to train on. The
fold's test rows are never read, so choosing the budget from the pilot uses no test data.

Per epoch a pilot run records the training loss, the validation score, the hold-out score
and the learning rate. The schedule (``train.lr_schedule``, ``train.val_window``) is the
grid's, so any early-stopping rule (epoch cap, patience) replays exactly on the recorded
curve (:mod:`bench.report.pilot`). Runs are written, one JSON line each, to
``results/<experiment>/pilot/<task>.jsonl`` (latest line per task and architecture wins).

Where the task data cannot be loaded (a GPU machine without the data stack), ``export_bundle``
writes the pilot's inputs (packed graphs, targets, the fold's training rows, the resolved
configuration) to one file and ``python -m bench.pilot BUNDLE OUT`` runs it there.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

PILOT_DIR = "pilot"


@dataclass
class PilotInput:
    """What one task contributes to the pilot: its graphs, targets and the fold's training rows."""

    task: str
    problem_type: str
    unit: str
    sha256: str
    graphs: object  # indexable graphs of the whole task (list or bench.graphs.PackedGraphs)
    targets: np.ndarray
    train_rows: np.ndarray


class _Deadline(Exception):
    """The wall-clock budget of a pilot run ran out; the epochs so far are kept."""


def pilot_splits(train_rows: np.ndarray, cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, hold-out) row indices carved from one fold's training rows with the pilot seed."""
    from bench.training import split_train_val

    rest, holdout = split_train_val(train_rows, cfg.pilot.holdout_fraction, cfg.pilot.seed)
    train, val = split_train_val(rest, cfg.train.val_fraction, cfg.pilot.seed)
    return train, val, holdout


def run_one(item: PilotInput, architecture: str, cfg, device: str = "cpu", deadline_s: float | None = None) -> dict:
    """One pilot fit; returns its record (history, sizes, device, wall time)."""
    from bench.graphs import take_graphs
    from bench.normalisation import fitted_hparams
    from bench.provenance import device_name
    from bench.training import configure_torch, fit

    train, val, holdout = pilot_splits(item.train_rows, cfg)
    train_graphs = take_graphs(item.graphs, train)
    hparams = fitted_hparams(architecture, cfg.model_hparams(architecture), train_graphs,
                             fixed=cfg.hparams.get(architecture, {}))
    tcfg = cfg.train.model_copy(update={"epochs": cfg.pilot.epochs, "patience": cfg.pilot.epochs + 1,
                                        "device": device, "num_threads": cfg.executor.threads})
    history: list[dict] = []
    start = time.perf_counter()

    def on_epoch(epoch: int, metrics: dict) -> None:
        history.append(dict(metrics))
        if deadline_s is not None and time.perf_counter() - start > deadline_s:
            raise _Deadline

    n_params, hit_deadline = None, False
    try:
        result = fit(architecture, hparams, train_graphs, item.targets[train], take_graphs(item.graphs, val),
                     item.targets[val], item.problem_type, tcfg, cfg.pilot.seed, on_epoch=on_epoch, progress=False,
                     extra_eval={"holdout": (take_graphs(item.graphs, holdout), item.targets[holdout])})
        n_params = result.n_params
    except _Deadline:
        hit_deadline = True
    if n_params is None:
        import architectures

        n_params = architectures.count_parameters(architectures.create(architecture, out_dim=1, **hparams))
    return {
        "task": item.task, "architecture": architecture, "variant": cfg.pilot.variant, "fold": cfg.pilot.fold,
        "seed": cfg.pilot.seed, "preset": cfg.preset_for(architecture), "dataset_sha256": item.sha256, "unit": item.unit,
        "n_train": len(train), "n_val": len(val), "n_holdout": len(holdout), "n_params": int(n_params),
        "train": tcfg.model_dump(exclude={"device", "num_threads"}), "pilot_epochs": cfg.pilot.epochs,
        "device": device_name(configure_torch(cfg.executor.threads, device)),
        "deadline_hit": hit_deadline, "epochs_run": len(history), "wall_time_s": time.perf_counter() - start,
        "history": [{k: float(v) for k, v in h.items()} for h in history],
    }


def append_records(records: list[dict], out_dir: Path) -> list[Path]:
    """Append pilot records to ``out_dir/<task>.jsonl`` (one line per run); returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = set()
    for rec in records:
        path = out_dir / f"{rec['task']}.jsonl"
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
        written.add(path)
    return sorted(written)


def load_records(pilot_dir: Path) -> list[dict]:
    """The latest pilot record of every (task, architecture, variant) under ``pilot_dir``."""
    latest: dict[tuple, dict] = {}
    for path in sorted(Path(pilot_dir).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a torn last line of an interrupted writer
                continue
            latest[(rec["task"], rec["architecture"], rec["variant"])] = rec
    return [latest[k] for k in sorted(latest)]


_INPUTS: dict = {}  # per process: (bundle or None, task) -> PilotInput, loaded once


def _input_for(cfg, bundle: Path | None, task: str) -> PilotInput:
    """The pilot input of ``task``, loaded in this process (workers load their own: graphs are
    never pickled between processes, a memory-mapped cache is simply opened again)."""
    key = (str(bundle) if bundle else None, task)
    if key not in _INPUTS:
        items = load_bundle(bundle)[1] if bundle else pilot_inputs(cfg.model_copy(update={"tasks": [task]}))
        _INPUTS.update({(key[0], item.task): item for item in items})
    return _INPUTS[key]


def _run_job(job) -> dict:
    cfg, bundle, task, architecture, device, deadline_s = job
    return run_one(_input_for(cfg, bundle, task), architecture, cfg, device, deadline_s)


def run_pilot(cfg, out_dir: Path, workers: int = 1, device: str = "cpu", deadline_s: float | None = None,
              progress: bool = True, bundle: Path | None = None, cpu_architectures=()) -> list[Path]:
    """Every task x architecture of ``cfg`` (one process each, ``workers`` at a time); writes as runs finish.

    Inputs come from the task data on this machine, or from ``bundle`` (:func:`export_bundle`).
    ``cpu_architectures`` run on the CPU whatever ``device`` says (cheap models beside a busy GPU).
    """
    from tqdm.auto import tqdm

    jobs = [(cfg, bundle, task, arch, "cpu" if arch in cpu_architectures else device, deadline_s)
            for task in cfg.tasks for arch in cfg.architectures]
    written: list[Path] = []
    with tqdm(total=len(jobs), desc="pilot", unit="run", disable=not progress) as bar:
        if workers <= 1:
            for job in jobs:
                written += append_records([_run_job(job)], out_dir)
                bar.update()
        else:
            # spawned, as the grid's pool: a forked child of a process that ran torch can hang
            # in its thread pool, and CUDA cannot be used in forked children at all
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                for rec in pool.map(_run_job, jobs):
                    written += append_records([rec], out_dir)
                    bar.update()
    return sorted(set(written))


def pilot_inputs(cfg) -> list[PilotInput]:
    """The pilot inputs of every task of ``cfg``, built from the task data on this machine."""
    from bench.cells import load_task
    from bench.graphs import build_task_graphs

    items = []
    for task in cfg.tasks:
        data = load_task(task, cfg)
        graphs = build_task_graphs(data.structures, data.ids, cfg.pilot.variant, cfg.graph.cutoff,
                                   cfg.graph.max_neighbors, data.sha256, progress=False)
        import tasks

        items.append(PilotInput(task, data.problem_type, tasks.get_task(task).unit, data.sha256, graphs,
                                np.asarray(data.targets, dtype=np.float64),
                                np.asarray(data.folds[cfg.pilot.fold].train)))
    return items


def export_bundle(cfg, items: list[PilotInput], path: Path) -> Path:
    """One file with everything ``python -m bench.pilot`` needs (graphs packed, no task loader)."""
    from bench.graphs import PackedGraphs
    from bench.graphs.pack import pack_chunks
    from bench.graphs.batch import Chunk

    payload = {"config": cfg.model_dump(mode="json"), "tasks": []}
    for item in items:
        graphs = item.graphs
        if not isinstance(graphs, PackedGraphs):
            graphs = PackedGraphs(pack_chunks([Chunk(**_chunk_fields(list(graphs)))]))
        payload["tasks"].append({"task": item.task, "problem_type": item.problem_type, "unit": item.unit,
                                 "sha256": item.sha256, "tensors": dict(graphs.tensors),
                                 "targets": torch.from_numpy(item.targets), "train_rows": torch.from_numpy(item.train_rows)})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def _chunk_fields(graphs: list) -> dict:
    return {"z": np.concatenate([g.z.numpy() for g in graphs]), "pos": np.concatenate([g.pos.numpy() for g in graphs]),
            "cell": np.concatenate([g.cell.numpy() for g in graphs]),
            "edge_index": np.concatenate([g.edge_index.numpy() for g in graphs], axis=1),
            "edge_shift": np.concatenate([g.edge_shift.numpy() for g in graphs]),
            "edge_type": np.concatenate([g.edge_type.numpy() for g in graphs]),
            "num_nodes": np.array([g.num_nodes for g in graphs]),
            "num_edges": np.array([g.edge_index.shape[1] for g in graphs])}


def load_bundle(path: Path):
    """(config, inputs) of a bundle written by :func:`export_bundle`."""
    from bench.config import GridConfig
    from bench.graphs import PackedGraphs

    payload = torch.load(path, weights_only=True)
    cfg = GridConfig.model_validate(payload["config"])
    items = [PilotInput(t["task"], t["problem_type"], t["unit"], t["sha256"], PackedGraphs(t["tensors"]),
                        t["targets"].numpy(), t["train_rows"].numpy()) for t in payload["tasks"]]
    return cfg, items


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.pilot BUNDLE OUT_DIR [--workers N] [--device cuda] [--deadline S] [--architectures a,b]``."""
    parser = argparse.ArgumentParser(prog="python -m bench.pilot", description=main.__doc__)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--deadline", type=float, default=None, help="seconds of wall time per run")
    parser.add_argument("--architectures", default=None)
    parser.add_argument("--cpu-architectures", default="", help="these run on the CPU whatever --device says")
    args = parser.parse_args(argv)
    cfg, items = load_bundle(args.bundle)
    update = {"tasks": [item.task for item in items]}
    if args.architectures:
        update["architectures"] = args.architectures.split(",")
    for path in run_pilot(cfg.model_copy(update=update), args.out_dir, args.workers, args.device, args.deadline,
                          bundle=args.bundle, cpu_architectures=set(filter(None, args.cpu_architectures.split(",")))):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
