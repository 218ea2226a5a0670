"""Saved models: a cell's trained weights as a small, code-free artifact that ``bench predict`` loads.

A saved model is a folder of two files:

- ``weights.pt``: the model's ``state_dict`` (best epoch), tensors only, read back with
  ``torch.load(weights_only=True)``, so loading never runs pickled code;
- ``model.json``: everything needed to rebuild and use it (format ``bench-model/1``):
  architecture name, resolved hyperparameters, size preset, ``out_dim``, problem type, the
  target scaler (mean, std in target units), the graph settings the model was trained on
  (variant, cutoff in Å, max_neighbors, graph-code version), the task (name, target, unit,
  dataset sha256), the cell (fold, seed, cell key, config hash, best epoch, best validation
  score, parameter count), package versions and the sha256 of ``weights.pt``.

Every cell logs one (:func:`log_cell_model`): with MLflow 3 as a *logged model* (shown in
the UI's "Logged models" column and on the run's page, linked to the run as its output and
tagged ``bench.model_id`` on the run); with older MLflow as the run artifact ``model/``.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

MODEL_FORMAT = "bench-model/1"
WEIGHTS_FILE = "weights.pt"
SPEC_FILE = "model.json"
ARTIFACT_PATH = "model"  # run artifact folder where MLflow has no logged models
MODEL_TYPE = "bench-state-dict"
MODEL_ID_TAG = "bench.model_id"


class ModelFormatError(ValueError):
    """A saved-model folder is missing a file, has another format, or does not fit the code."""


@dataclass
class SavedModel:
    """A loaded model, ready for :func:`bench.training.predict` (``model`` is in eval mode)."""

    spec: dict[str, Any]
    model: torch.nn.Module
    scaler: Any  # bench.training.TargetScaler

    @property
    def graph(self) -> tuple[str, float, int | None]:
        """(variant, cutoff in Å, max_neighbors) the model's graphs must be built with."""
        g = self.spec["graph"]
        return g["variant"], float(g["cutoff"]), g["max_neighbors"]

    @property
    def problem_type(self) -> str:
        return self.spec["problem_type"]

    def label(self) -> str:
        c, t = self.spec.get("cell", {}), self.spec.get("task", {})
        return (f"{t.get('name', '?')}|{self.spec['architecture']}|{self.spec['graph']['variant']}"
                f"|fold{c.get('fold', '?')}|seed{c.get('seed', '?')}")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_model(folder: str | Path, model: torch.nn.Module, spec: dict[str, Any]) -> Path:
    """Write ``weights.pt`` (CPU state dict) and ``model.json`` (``spec`` + weights sha256) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save(state, folder / WEIGHTS_FILE)
    spec = {**spec, "format": MODEL_FORMAT, "weights": WEIGHTS_FILE,
            "weights_sha256": _sha256(folder / WEIGHTS_FILE)}
    (folder / SPEC_FILE).write_text(json.dumps(spec, indent=1, sort_keys=True, default=_jsonable) + "\n")
    return folder


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> SavedModel:
    """Rebuild the saved model in ``folder`` (weights checked by sha256) on ``device``."""
    import architectures
    from bench.training import TargetScaler

    folder = Path(folder)
    spec_path, weights_path = folder / SPEC_FILE, folder / WEIGHTS_FILE
    for path in (spec_path, weights_path):
        if not path.is_file():
            raise ModelFormatError(f"{folder}: not a saved model ({path.name} is missing)")
    spec = json.loads(spec_path.read_text())
    if spec.get("format") != MODEL_FORMAT:
        raise ModelFormatError(f"{spec_path}: format {spec.get('format')!r}; this version reads {MODEL_FORMAT}")
    if spec.get("weights_sha256") != _sha256(weights_path):
        raise ModelFormatError(f"{weights_path}: sha256 differs from the one in {SPEC_FILE}; the file was changed")
    model = architectures.create(spec["architecture"], out_dim=int(spec["out_dim"]), **spec["hparams"])
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ModelFormatError(
            f"{folder}: the weights of {spec['architecture']} (saved at git commit {spec.get('git_commit', '?')}) "
            f"do not fit the architecture's current code: {err}") from err
    model.to(device).eval()
    scaler = TargetScaler(float(spec["target_scaler"]["mean"]), float(spec["target_scaler"]["std"]))
    return SavedModel(spec, model, scaler)


def cell_model_spec(cell, cfg, hparams: dict, result, data, run_tags: dict[str, str]) -> dict[str, Any]:
    """``model.json`` of a trained cell (``cfg`` as trained: tuned parameters applied)."""
    import tasks
    from bench.graphs import GRAPH_CODE_VERSION
    from bench.provenance import git_commit, package_versions

    # a TaskData made in code (tests, notebooks) need not be registered: then target and unit are unknown
    task = tasks.TASKS.get(data.name) if data.name in tasks.TASKS else None
    return {
        "architecture": cell.architecture, "hparams": dict(hparams), "preset": cfg.preset_for(cell.architecture), "out_dim": 1,
        "problem_type": data.problem_type,
        "target_scaler": {"mean": result.scaler.mean, "std": result.scaler.std},
        "graph": {"variant": cell.variant, "cutoff": cfg.graph.cutoff, "max_neighbors": cfg.graph.max_neighbors,
                  "graph_code_version": GRAPH_CODE_VERSION},
        "task": {"name": data.name, "target": getattr(task, "target", None), "unit": getattr(task, "unit", None),
                 "dataset_sha256": data.sha256},
        "cell": {"fold": cell.fold, "seed": cell.seed, "cell_key": run_tags.get("bench.cell_key"),
                 "config_hash": run_tags.get("bench.config_hash"), "best_epoch": result.best_epoch,
                 "best_val_score": result.best_val, "n_params": result.n_params},
        "git_commit": git_commit(), "versions": package_versions(),
    }


def log_cell_model(log, cell, cfg, hparams: dict, result, data) -> str:
    """Save the cell's best-epoch model and log it on the cell's run; returns where it went
    (``models:/<id>`` for a logged model, ``runs:/<run>/model`` otherwise).

    ``log`` is the cell's :class:`bench.tracking.RunLogger`, ``result`` its ``FitResult``.
    """
    client, run_id = log.client, log.run_id
    run = client.get_run(run_id)
    spec = cell_model_spec(cell, cfg, hparams, result, data, run.data.tags)
    with tempfile.TemporaryDirectory(prefix="bench-model-") as tmp:
        save_model(tmp, result.model, spec)
        if not hasattr(client, "create_logged_model"):  # MLflow 2: a plain run artifact
            client.log_artifacts(run_id, tmp, ARTIFACT_PATH)
            return f"runs:/{run_id}/{ARTIFACT_PATH}"
        from mlflow.entities import LoggedModelOutput

        params = {"architecture": cell.architecture, "variant": cell.variant, "cutoff": str(cfg.graph.cutoff),
                  "max_neighbors": str(cfg.graph.max_neighbors), "preset": str(cfg.preset_for(cell.architecture)),
                  **{f"hp.{k}": json.dumps(v, default=_jsonable) for k, v in sorted(hparams.items())}}
        tags = {f"bench.{k}": str(v) for k, v in (("task", cell.task), ("architecture", cell.architecture),
                                                   ("variant", cell.variant), ("fold", cell.fold),
                                                   ("seed", cell.seed), ("cell_key", spec["cell"]["cell_key"]))}
        model = client.create_logged_model(run.info.experiment_id, name=_model_name(cell), source_run_id=run_id,
                                           params=params, tags=tags, model_type=MODEL_TYPE)
        try:
            client.log_model_artifacts(model.model_id, tmp)
        except BaseException:
            client.finalize_logged_model(model.model_id, "FAILED")
            raise
        client.finalize_logged_model(model.model_id, "READY")
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=int(result.best_epoch))])
    client.set_tag(run_id, MODEL_ID_TAG, model.model_id)
    return f"models:/{model.model_id}"


def _model_name(cell) -> str:
    # MLflow model names allow letters, digits, '-', '_' and '.'
    return f"{cell.task}-{cell.architecture}-{cell.variant}-fold{cell.fold}-seed{cell.seed}".replace("|", "-")


def fetch_run_model(client, run, tracking_uri: str, dst: str | Path) -> Path:
    """Download the saved model of a cell run into ``dst``; returns the folder with ``model.json``."""
    import mlflow.artifacts

    model_id = run.data.tags.get(MODEL_ID_TAG)
    if model_id:
        location = client.get_logged_model(model_id).artifact_location
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=str(dst),
                                                        tracking_uri=tracking_uri))
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    if ARTIFACT_PATH in names:
        return Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=ARTIFACT_PATH,
                                                        dst_path=str(dst), tracking_uri=tracking_uri))
    raise ModelFormatError(
        f"run {run.info.run_id} ({run.info.run_name}) has no saved model: it was trained before cells saved "
        "their models, or it is a dummy cell. Rerun the grid under a new experiment name to train models that are kept.")
