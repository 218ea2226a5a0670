"""Typed run configuration: YAML profiles (``bench/profiles/``, shipped in the package) validated into these models.

Every default comes from :mod:`bench.defaults`; a profile sets only what differs, and
``--set section.key=value`` on the command line overrides any field.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench import defaults


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GraphConfig(StrictModel):
    """How structures become graphs (the variant is a grid axis, not set here)."""

    cutoff: float = Field(defaults.CUTOFF, gt=0, description="neighbour cutoff (Å)")
    max_neighbors: int | None = Field(defaults.MAX_NEIGHBORS, ge=1, description="tie-inclusive cap per atom; null = none")


class TrainConfig(StrictModel):
    """Budget and optimiser of one cell."""

    epochs: int = Field(defaults.EPOCHS, ge=1)
    batch_size: int = Field(defaults.BATCH_SIZE, ge=1)
    lr: float = Field(defaults.LEARNING_RATE, gt=0)
    weight_decay: float = Field(defaults.WEIGHT_DECAY, ge=0)
    patience: int = Field(defaults.PATIENCE, ge=1)
    val_fraction: float = Field(defaults.VAL_FRACTION, gt=0, lt=1)
    loss: Literal["l1", "mse"] = defaults.LOSS
    lr_decay_factor: float = Field(defaults.LR_DECAY_FACTOR, gt=0, le=1)
    lr_decay_patience: int = Field(defaults.LR_DECAY_PATIENCE, ge=1)
    device: str = defaults.DEVICE
    num_threads: int | None = Field(None, ge=1, description="torch threads; null = torch's default")
    deterministic: bool = Field(defaults.DETERMINISTIC, description="deterministic torch kernels (repeatable cells)")


class TuneConfig(StrictModel):
    """Optuna budget, the same for every architecture and variant of a grid (0 trials = no tuning).

    The search space of an architecture is :data:`bench.defaults.SHARED_SEARCH_SPACE` plus its
    registered space; ``space`` overrides entries by name (``null`` removes a knob), and a
    hyperparameter fixed under ``hparams`` is not tuned.
    """

    n_trials: int = Field(defaults.N_TRIALS, ge=0, description="trials per study (one study per task, architecture, variant, fold)")
    timeout: float | None = Field(defaults.TUNE_TIMEOUT, gt=0, description="seconds one worker spends on one study")
    pruner: Literal["median", "successive_halving", "none"] = defaults.PRUNER
    sampler_seed: int = defaults.SAMPLER_SEED
    seed: int = Field(defaults.TUNE_SEED, description="inner split and trial training seed")
    val_fraction: float = Field(defaults.TUNE_VAL_FRACTION, gt=0, lt=1, description="inner validation share")
    epochs: int | None = Field(None, ge=1, description="epochs per trial; null = train.epochs")
    space: dict[str, dict[str, Any] | None] = Field(default_factory=dict, description="search-space overrides")

    @property
    def enabled(self) -> bool:
        return self.n_trials > 0


class ExecutorConfig(StrictModel):
    """Where cells and trials run; never part of a cell's key."""

    kind: Literal["local", "ray"] = defaults.EXECUTOR
    workers: int | None = Field(defaults.WORKERS, ge=1, description="local pool size; null = CPU cores")
    threads: int = Field(defaults.THREADS_PER_WORKER, ge=1, description="torch threads per worker")
    ray_address: str | None = Field(None, description="existing Ray cluster, e.g. ray://head:10001 or auto")


class GridConfig(StrictModel):
    """A grid of cells: tasks x architectures x variants x folds x seeds."""

    experiment: str = defaults.EXPERIMENT
    tasks: list[str] = Field(default_factory=lambda: [defaults.DEFAULT_TASK])
    architectures: list[str] = Field(default_factory=lambda: ["cgcnn"])
    variants: list[str] = Field(default_factory=lambda: ["distance", "multi_edge", "lattice"])
    folds: list[int] = Field(default_factory=lambda: list(defaults.FOLDS))
    seeds: list[int] = Field(default_factory=lambda: list(defaults.SEEDS))
    graph: GraphConfig = Field(default_factory=GraphConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    arch_preset: str | None = Field(None, description="size preset of every architecture (paper | matched); "
                                                      "null = the registered defaults (= matched for built-ins)")
    hparams: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-architecture overrides")
    tune: TuneConfig = Field(default_factory=TuneConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    allow_unverified_data: bool = False
    task_files: list[str] = Field(default_factory=list, description="YAML files of user tasks (tasks/user.py) to "
                                                                    "register; relative to the profile's folder")

    @field_validator("folds")
    @classmethod
    def _folds_in_range(cls, folds: list[int]) -> list[int]:
        bad = [f for f in folds if not 0 <= f <= 4]
        if bad:
            raise ValueError(f"folds must be in 0..4, got {bad}")
        return folds

    def validate_names(self) -> None:
        """Check every task, architecture, variant and hyperparameter name against its registry."""
        import architectures
        import tasks
        from bench.graphs import VARIANTS

        from bench.registry import parse_names
        from tasks.user import register_task_files

        register_task_files(self.task_files)
        # "all" names every registered entry (plugins included) and every name is checked;
        # a group name (tasks.TASK_GROUPS: "probes", "synthetic", "matbench") stands for its tasks
        expanded = [t for name in self.tasks for t in tasks.TASK_GROUPS.get(name, [name])]
        self.tasks = parse_names(list(dict.fromkeys(expanded)), tasks.TASKS)
        self.architectures = parse_names(self.architectures, architectures.REGISTRY)
        self.variants = parse_names(self.variants, VARIANTS)
        for name in self.hparams:
            architectures.REGISTRY.get(name)
        for name in self.architectures:
            self.model_hparams(name)
        if self.tune.enabled:
            from bench.tuning import search_space

            for name in self.architectures:
                search_space(name, self)


    def model_hparams(self, architecture: str) -> dict[str, Any]:
        """Resolved hyperparameters of ``architecture`` in this grid: registered defaults, then
        ``arch_preset``, then ``hparams[architecture]``; a model's ``cutoff`` follows
        ``graph.cutoff`` unless ``hparams`` sets it."""
        import architectures

        overrides = dict(self.hparams.get(architecture, {}))
        if "cutoff" in architectures.REGISTRY.get(architecture).defaults:
            overrides.setdefault("cutoff", self.graph.cutoff)
        return architectures.resolve_hparams(architecture, self.arch_preset, **overrides)


class GridError(RuntimeError):
    """Some units of a grid failed; the others finished."""


def stable_hash(obj: Any, length: int = 16) -> str:
    """Short sha256 of a JSON-serialisable object (key order does not matter)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _parse_value(text: str) -> Any:
    return yaml.safe_load(text)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a raw profile dict."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        dotted, value = item.split("=", 1)
        keys = dotted.strip().split(".")
        node = raw
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {dotted}: {key!r} is not a section")
        node[keys[-1]] = _parse_value(value)
    return raw


def profile_path(profile: str | Path) -> Path:
    path = Path(profile)
    if path.suffix in {".yaml", ".yml"}:
        return path
    candidate = defaults.PROFILES_DIR / f"{profile}.yaml"
    if not candidate.exists():
        known = sorted(p.stem for p in defaults.PROFILES_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"unknown profile {profile!r}; known: {', '.join(known)}")
    return candidate


def load_config(profile: str | Path | None = None, overrides: list[str] | None = None) -> GridConfig:
    """Profile YAML (or none) + ``--set`` overrides -> validated :class:`GridConfig`."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if profile is not None:
        path = profile_path(profile)
        source = str(path)
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"profile {path} must be a mapping at the top level")
        if isinstance(raw.get("task_files"), list):  # user task files sit beside the profile
            raw["task_files"] = [str((path.parent / str(f)).resolve()) for f in raw["task_files"]]
    raw = apply_overrides(raw, overrides or [])
    try:
        return GridConfig.model_validate(raw)
    except ValidationError as err:
        raise ValueError(f"invalid configuration from {source}:\n{err}") from None
