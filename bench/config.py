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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
    lr_schedule: Literal["plateau", "cosine", "constant"] = Field(defaults.LR_SCHEDULE,
                                                                  description="learning-rate schedule")
    val_window: int = Field(defaults.VAL_WINDOW, ge=1, description="epochs in the trailing mean of the validation "
                                                                  "score that early stopping watches (1 = raw)")
    device: str = defaults.DEVICE
    num_threads: int | None = Field(None, ge=1, description="torch threads; null = executor.threads "
                                                           "(default 1) in a grid, 1 on its own")
    deterministic: bool = Field(defaults.DETERMINISTIC, description="deterministic torch kernels (repeatable cells)")


class BudgetConfig(StrictModel):
    """A task's own stopping budget, instead of ``train``'s (the budget pilot chooses one per task)."""

    epochs: int | None = Field(None, ge=1, description="epoch cap; null = train.epochs")
    patience: int | None = Field(None, ge=1, description="early-stopping patience; null = train.patience")


class TuneConfig(StrictModel):
    """Optuna budget, the same for every architecture and variant of a grid (0 trials = no tuning).

    The search space of an architecture is :data:`bench.defaults.SHARED_SEARCH_SPACE` plus its
    registered space; ``space`` overrides entries by name (``null`` removes a knob), and a
    hyperparameter fixed under ``hparams`` is not tuned.
    """

    n_trials: int = Field(defaults.N_TRIALS, ge=0, description="trials per study (one study per task, architecture, variant, fold)")
    timeout: float | None = Field(defaults.TUNE_TIMEOUT, gt=0, description="seconds one worker spends on one study")
    pruner: Literal["median", "successive_halving", "none"] = defaults.PRUNER
    sampler_seed: int = Field(defaults.SAMPLER_SEED, ge=0)
    seed: int = Field(defaults.TUNE_SEED, ge=0, description="inner split and trial training seed")
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
    threads: int = Field(defaults.THREADS_PER_WORKER, ge=1,
                         description="torch threads of every cell, in any worker or in the main process")
    ray_address: str | None = Field(None, description="existing Ray cluster, e.g. ray://head:10001 or auto")


class PilotConfig(StrictModel):
    """The budget pilot (``bench pilot``): long fits on one fold's training rows, no early stopping,
    whose learning curves choose the grid's epoch cap, patience and validation window."""

    epochs: int = Field(defaults.PILOT_EPOCHS, ge=1, description="epochs of every pilot run")
    variant: str = Field(defaults.DEFAULT_VARIANT, description="edge variant of the pilot runs")
    fold: int = Field(0, ge=0, le=4, description="outer fold whose TRAINING rows the pilot uses")
    seed: int = Field(0, ge=0)
    holdout_fraction: float = Field(defaults.PILOT_HOLDOUT_FRACTION, gt=0, lt=1,
                                    description="share of the fold's training rows held out to score the pilot")


class GridConfig(StrictModel):
    """A grid of cells: tasks x architectures x variants x folds x seeds."""

    experiment: str = defaults.EXPERIMENT
    tasks: list[str] = Field(default_factory=lambda: [defaults.DEFAULT_TASK])
    architectures: list[str] = Field(default_factory=lambda: ["cgcnn"])
    variants: list[str] = Field(default_factory=lambda: ["distance", "multi_edge", "lattice"])
    folds: list[int] = Field(default_factory=lambda: list(defaults.FOLDS))
    seeds: list[int] = Field(default_factory=lambda: list(defaults.SEEDS))
    seeds_for: dict[str, list[int]] = Field(default_factory=dict, description=(
        "seeds of some cells instead of `seeds`: keys 'task' or 'task|architecture' (the more specific wins)"))
    variants_for: dict[str, list[str]] = Field(default_factory=dict, description=(
        "variants of some architectures instead of `variants` (may name variants outside `variants`: "
        "then only those architectures get cells of them)"))
    tasks_for: dict[str, list[str]] = Field(default_factory=dict, description=(
        "tasks of some architectures instead of `tasks` (each must be one of `tasks`): a positive "
        "control built for one probe runs on that probe only"))
    graph: GraphConfig = Field(default_factory=GraphConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    budget_for: dict[str, BudgetConfig] = Field(default_factory=dict, description=(
        "epoch cap and patience of some tasks instead of train's (keys: task names): the same for "
        "every cell of a task, chosen per task by the budget pilot"))
    arch_preset: str | None = Field(None, description="size preset of every architecture (paper | matched); "
                                                      "null = the registered defaults (= matched for built-ins)")
    hparams: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-architecture overrides")
    tune: TuneConfig = Field(default_factory=TuneConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    pilot: PilotConfig = Field(default_factory=PilotConfig)
    anchors: dict[str, str] = Field(default_factory=dict, description=(
        "architecture of this grid -> label of the published Matbench entry it reproduces "
        "(bench.report.references), reported in tables/reproduction.csv"))
    compare_with: str | None = Field(None, description=(
        "profile whose committed cells are this grid's baselines in the report (same task, budget and "
        "graph settings, checked); e.g. the controls grid reads the quick grid's seed encodings"))
    allow_unverified_data: bool = False
    allow_nonphysical_data: bool = Field(False, description="run data that fails the physical sanity "
                                                           "checks (tasks.validation) with a warning")
    task_files: list[str] = Field(default_factory=list, description="YAML files of user tasks (tasks/user.py) to "
                                                                    "register; relative to the profile's folder")

    @field_validator("folds")
    @classmethod
    def _folds_in_range(cls, folds: list[int]) -> list[int]:
        bad = [f for f in folds if not 0 <= f <= 4]
        if bad:
            raise ValueError(f"folds must be in 0..4, got {bad}")
        return folds

    @field_validator("seeds")
    @classmethod
    def _seeds_non_negative(cls, seeds: list[int]) -> list[int]:
        bad = [s for s in seeds if s < 0]
        if bad:  # numpy's generators take no negative seed; refuse it here, not inside a run
            raise ValueError(f"seeds must be >= 0, got {bad}")
        return seeds

    @model_validator(mode="after")
    def _one_thread_count(self) -> GridConfig:
        """Every cell trains with ``executor.threads`` torch threads, in a pool worker, a Ray
        task or the main process alike (``train.num_threads`` may say the same, not differ)."""
        threads = self.train.num_threads
        if threads is not None and threads != self.executor.threads and \
                self.executor.threads != defaults.THREADS_PER_WORKER:
            raise ValueError(f"train.num_threads={threads} and executor.threads={self.executor.threads} "
                             "disagree; set executor.threads only")
        if threads is None or threads != self.executor.threads:
            # train.num_threads alone (an older profile) sets the executor's count too
            self.executor.threads = threads or self.executor.threads
            self.train.num_threads = self.executor.threads
        return self

    @property
    def threads(self) -> int:
        """Torch threads of every cell of this grid."""
        return self.executor.threads

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
        # selections may name cells outside a slice (--tasks/--architectures), never unknown names
        for key, seeds in self.seeds_for.items():
            task, _, arch = key.partition("|")
            tasks.TASKS.get(task)
            if arch:
                architectures.REGISTRY.get(arch)
            if any(s < 0 for s in seeds):
                raise ValueError(f"seeds_for[{key!r}]: seeds must be >= 0, got {seeds}")
        for arch, variants in self.variants_for.items():
            architectures.REGISTRY.get(arch)
            parse_names(variants, VARIANTS)
        for task in self.budget_for:
            tasks.TASKS.get(task)
        for arch, names in self.tasks_for.items():
            architectures.REGISTRY.get(arch)
            self.tasks_for[arch] = parse_names(list(dict.fromkeys(
                t for name in names for t in tasks.TASK_GROUPS.get(name, [name]))), tasks.TASKS)
        from bench.space import check_hparams, search_space

        for name in self.architectures:
            check_hparams(name, self.model_hparams(name))
        if self.tune.enabled:
            for name in self.architectures:
                search_space(name, self)

    def for_task(self, task: str) -> GridConfig:
        """This grid as the cells of ``task`` see it: ``train`` with ``budget_for[task]`` applied
        (``self`` when the task has no budget of its own, so other grids' cell keys are unchanged)."""
        own = self.budget_for.get(task)
        if own is None:
            return self
        out = self.model_copy()
        out.train = self.train.model_copy(update=own.model_dump(exclude_none=True))
        return out

    def cell_seeds(self, task: str, architecture: str) -> list[int]:
        """Seeds of the cells of (task, architecture): ``seeds_for`` by 'task|architecture', then 'task', else ``seeds``."""
        return self.seeds_for.get(f"{task}|{architecture}", self.seeds_for.get(task, self.seeds))

    @property
    def all_variants(self) -> list[str]:
        """Every variant with cells in this grid: ``variants``, then those only ``variants_for`` names."""
        extra = [v for vs in self.variants_for.values() for v in vs if v not in self.variants]
        return list(self.variants) + list(dict.fromkeys(extra))

    def has_cells(self, task: str, architecture: str, variant: str) -> bool:
        """Whether (task, architecture, variant) has cells: ``tasks_for`` and ``variants_for`` allow it."""
        return variant in self.cell_variants(architecture) and task in self.tasks_for.get(architecture, [task])

    def cell_variants(self, architecture: str) -> list[str]:
        """Variants of ``architecture``'s cells: ``variants_for[architecture]``, else ``variants``."""
        return self.variants_for.get(architecture, self.variants)

    def model_hparams(self, architecture: str) -> dict[str, Any]:
        """Resolved hyperparameters of ``architecture`` in this grid: registered defaults, then
        ``arch_preset``, then ``hparams[architecture]``; a model's ``cutoff`` follows
        ``graph.cutoff`` unless ``hparams`` sets it."""
        import architectures

        overrides = dict(self.hparams.get(architecture, {}))
        if "cutoff" in architectures.REGISTRY.get(architecture).defaults:
            overrides.setdefault("cutoff", self.graph.cutoff)
        return architectures.resolve_hparams(architecture, self.preset_for(architecture), **overrides)

    def preset_for(self, architecture: str) -> str | None:
        """The size preset ``architecture`` runs at in this grid: ``arch_preset``, except that a
        ``name@preset`` fixes its own and an architecture registering no presets (a plugin)
        runs at its defaults (as does the dummy baseline). A built-in lacking the preset is an
        error naming the known ones."""
        import architectures

        if (self.arch_preset is None or architectures.registry.PRESET_SEPARATOR in architecture
                or architecture not in architectures.REGISTRY):  # the dummy baseline has no size
            return None
        return self.arch_preset if architectures.REGISTRY.get(architecture).presets else None


class GridError(RuntimeError):
    """Some units of a grid failed; the others finished."""


def stable_hash(obj: Any, length: int = 16) -> str:
    """Short sha256 of a JSON-serialisable object (key order does not matter)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _parse_value(text: str) -> Any:
    return yaml.safe_load(text)


def _describe(error: dict) -> str:
    """One line per pydantic error: the field's dotted path, what is wrong, the value given."""
    where = ".".join(str(x) for x in error["loc"]) or "profile"
    message = error["msg"].removeprefix("Value error, ")
    given = "" if error["type"] == "value_error" else f" (got {error.get('input')!r})"
    return f"  {where}: {message}{given}"


def _yaml_problem(err: yaml.YAMLError) -> str:
    """One line: what is wrong and where (line and column, 1-based)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else str(problem)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a raw profile dict."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        dotted, value = item.split("=", 1)
        try:
            parsed = _parse_value(value)
        except yaml.YAMLError as err:
            raise ValueError(f"--set {item}: the value is not valid YAML: {_yaml_problem(err)}") from None
        keys = dotted.strip().split(".")
        node = raw
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {dotted}: {key!r} is not a section")
        node[keys[-1]] = parsed
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
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"profile {path}: YAML syntax error: {_yaml_problem(err)}") from None
        except OSError as err:
            raise ValueError(f"profile {path}: cannot be read ({err.strerror or err})") from None
        if not isinstance(raw, dict):
            raise ValueError(f"profile {path} must be a mapping at the top level")
        if isinstance(raw.get("task_files"), list):  # user task files sit beside the profile
            raw["task_files"] = [str((path.parent / str(f)).resolve()) for f in raw["task_files"]]
    raw = apply_overrides(raw, overrides or [])
    try:
        return GridConfig.model_validate(raw)
    except ValidationError as err:
        problems = "\n".join(_describe(e) for e in err.errors())
        raise ValueError(f"invalid configuration from {source}:\n{problems}") from None
