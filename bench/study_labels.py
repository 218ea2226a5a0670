"""What an Optuna study and its trials say about themselves in optuna-dashboard and MLflow.

- A study names its objective (``validation MAE (<unit>)`` or ``validation BCE``) instead of
  "Objective 0", and carries user attributes: experiment, task, architecture, variant, fold,
  the budget (``tune.*``), the dataset sha256 and the MLflow parent run.
- A trial carries the id of its MLflow run (``mlflow_run_id``).
- A pruned trial's MLflow run keeps status FINISHED (KILLED means "interrupted" in this
  suite: Ctrl-C, a dead worker), and is marked by the tag ``bench.pruned=true``, the tag
  ``bench.pruned_at_epoch`` and the suffix ``|pruned`` on its run name, so the runs table
  shows it without opening the run.
"""
from __future__ import annotations

from typing import Any

import optuna

PRUNED_SUFFIX = "|pruned"


def objective_name(problem_type: str, unit: str) -> str:
    """The study's metric: what :func:`bench.training.fit` minimises on validation."""
    if problem_type == "classification":
        return "validation BCE"
    return f"validation MAE ({unit})" if unit else "validation MAE"


def label_study(study: optuna.Study, *, experiment: str, task: str, architecture: str, variant: str, fold: int,
                problem_type: str, budget: dict[str, Any], dataset_sha256: str,
                parent_run_id: str | None) -> None:
    """Set metric names and user attributes (idempotent: every worker may call it)."""
    import tasks

    unit = tasks.TASKS.get(task).unit if task in tasks.TASKS else ""  # a TaskData made in code may be unregistered
    study.set_metric_names([objective_name(problem_type, unit)])
    attrs = {"experiment": experiment, "task": task, "architecture": architecture, "variant": variant,
             "fold": fold, "dataset_sha256": dataset_sha256, "mlflow_parent_run_id": parent_run_id,
             **{f"budget.{k}": v for k, v in budget.items() if k != "space"}}
    have = study.user_attrs
    for key, value in attrs.items():
        if have.get(key) != value:
            study.set_user_attr(key, value)


def mark_pruned(log, run_name: str, epoch: int | None) -> None:
    """Mark the MLflow run of a pruned trial (see the module docstring)."""
    log.set_tags({"trial_state": "PRUNED", "pruned": "true", "pruned_at_epoch": "" if epoch is None else epoch})
    log.client.update_run(log.run_id, name=run_name + PRUNED_SUFFIX)
