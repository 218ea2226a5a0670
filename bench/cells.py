"""What a grid is made of and how its cells are named and keyed: no training, no tracking.

Imported by the runner (:mod:`bench.cell`, :mod:`bench.unit`, :mod:`bench.grid`), by
``bench status`` and by the reports, which must never import the runner. A cell is
(task, fold, architecture, variant, seed); its key hashes everything that can change its
result: the dataset's sha256, fold, seed and the settings of :func:`cell_settings`
(resolved hyperparameters, graph settings, training budget, torch threads and device
type, and the code: the architecture's source fingerprint and the behaviour versions of
the graph and training code, see :mod:`bench.fingerprint`).
"""
from __future__ import annotations

from dataclasses import dataclass

from bench.config import GridConfig, stable_hash

DUMMY = "dummy"
NO_VARIANT = "none"


@dataclass(frozen=True)
class Cell:
    task: str
    fold: int
    architecture: str
    variant: str
    seed: int

    def label(self) -> str:
        """``task|architecture|variant|foldF|seedS``: how ``bench status`` and logs name a cell."""
        return f"{self.task}|{self.architecture}|{self.variant}|fold{self.fold}|seed{self.seed}"

    def run_name(self) -> str:
        """``architecture|variant|task|foldF|seedS``: the MLflow run name (what the UI's name column shows)."""
        return f"{self.architecture}|{self.variant}|{self.task}|fold{self.fold}|seed{self.seed}"


@dataclass(frozen=True)
class Unit:
    """What one worker does at a time: one fold of one (task, architecture, variant), all
    seeds (tune the fold's study when tuning is on, then the final cells); or a dummy fold."""

    task: str
    architecture: str
    variant: str
    fold: int
    seeds: tuple[int, ...]

    def label(self) -> str:
        return f"{self.task}|{self.architecture}|{self.variant}|fold{self.fold}"

    def cells(self) -> list[Cell]:
        return [Cell(self.task, self.fold, self.architecture, self.variant, s) for s in self.seeds]


def parent_name(task: str, architecture: str, variant: str) -> str:
    """MLflow name of the parent run of (task, architecture, variant): ``architecture|variant|task``."""
    return f"{architecture}|{variant}|{task}"


def load_task(name: str, cfg: GridConfig):
    import tasks
    from tasks.user import register_task_files

    register_task_files(cfg.task_files)  # a worker process registers the grid's user tasks too
    return tasks.get_task(name).load(allow_unverified=cfg.allow_unverified_data)


def model_cells(cfg: GridConfig, task: str, variant: str) -> list[Cell]:
    return [Cell(task, fold, arch, variant, seed)
            for arch in cfg.architectures if cfg.has_cells(task, arch, variant)
            for fold in cfg.folds for seed in cfg.cell_seeds(task, arch)]


def dummy_cells(cfg: GridConfig, task: str) -> list[Cell]:
    return [Cell(task, fold, DUMMY, NO_VARIANT, 0) for fold in cfg.folds]


def grid_cells(cfg: GridConfig, task: str) -> list[Cell]:
    return dummy_cells(cfg, task) + [c for v in cfg.all_variants for c in model_cells(cfg, task, v)]


def grid_units(cfg: GridConfig) -> list[Unit]:
    units = []
    for task in cfg.tasks:
        units += [Unit(task, DUMMY, NO_VARIANT, fold, (0,)) for fold in cfg.folds]
        units += [Unit(task, arch, variant, fold, tuple(cfg.cell_seeds(task, arch)))
                  for variant in cfg.all_variants for arch in cfg.architectures if cfg.has_cells(task, arch, variant)
                  for fold in cfg.folds]
    return units


def effective_threads(cfg: GridConfig) -> int:
    """Torch CPU threads a model cell trains with: ``train.num_threads``, else the executor's
    ``threads`` per worker (what pool workers set). Fixed before the cell runs, so it can key it."""
    return int(cfg.train.num_threads or cfg.executor.threads)


def device_type(cfg: GridConfig) -> str:
    """``cpu`` or ``cuda``: ``train.device`` resolved on this machine (``auto`` picks cuda when present)."""
    from bench.training import resolve_device

    return resolve_device(cfg.train.device).type


def code_versions(architecture: str) -> dict[str, str]:
    """The code a model cell's result depends on (see :mod:`bench.fingerprint`)."""
    from bench.fingerprint import architecture_fingerprint
    from bench.graphs.cache import GRAPH_CODE_VERSION
    from bench.training import TRAINING_CODE_VERSION

    return {"architecture": architecture_fingerprint(architecture), "graphs": GRAPH_CODE_VERSION,
            "training": TRAINING_CODE_VERSION}


def cell_settings(cell: Cell, cfg: GridConfig) -> dict:
    """Everything besides data, fold and seed that determines a cell's result."""
    if cell.architecture == DUMMY:
        return {"architecture": DUMMY}
    cfg = cfg.for_task(cell.task)
    settings = {
        "architecture": cell.architecture,
        "variant": cell.variant,
        "hparams": cfg.model_hparams(cell.architecture),
        "graph": cfg.graph.model_dump(),
        "train": cfg.train.model_dump(exclude={"device", "num_threads"}),
        "threads": effective_threads(cfg),
        "device": device_type(cfg),
        "code": code_versions(cell.architecture),
    }
    preset = cfg.preset_for(cell.architecture)
    if preset is not None:
        settings["preset"] = preset
    if cfg.tune.enabled:
        # a tuned cell is keyed by its starting point and budget (search space included):
        # known before its study runs, so resume and `bench status` work at any time
        from bench.tuning import tune_budget

        settings["tune"] = tune_budget(cell.architecture, cfg)
    return settings


def cell_key(cell: Cell, dataset_sha256: str, config_hash: str) -> str:
    return stable_hash({"task": cell.task, "data": dataset_sha256, "fold": cell.fold, "seed": cell.seed,
                        "config": config_hash}, length=24)


def cell_identity(cell: Cell, cfg: GridConfig, dataset_sha256: str) -> tuple[dict, str, str]:
    """(settings, config hash, cell key) of ``cell`` under ``cfg``."""
    settings = cell_settings(cell, cfg)
    config_hash = stable_hash(settings)
    return settings, config_hash, cell_key(cell, dataset_sha256, config_hash)


def parent_key(task: str, architecture: str, variant: str, cfg: GridConfig, dataset_sha256: str) -> str:
    """One parent run per (task, architecture, variant) and settings (fold and seed aside)."""
    settings = cell_settings(Cell(task, 0, architecture, variant, 0), cfg)
    return stable_hash({"experiment": cfg.experiment, "task": task, "data": dataset_sha256, "settings": settings},
                       length=24)


def grid_keys(cfg: GridConfig, datasets: dict[str, str]) -> dict[str, Cell]:
    """``{cell key: cell}`` of every cell of the grid; ``datasets`` maps task -> dataset sha256."""
    return {cell_identity(c, cfg, datasets[task])[2]: c for task in cfg.tasks for c in grid_cells(cfg, task)}
