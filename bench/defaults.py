"""Every default of the suite, in one place.

Profiles (``bench/profiles/*.yaml``, shipped inside the package) and CLI flags override
these; nothing else in the code base hard-codes a default value for them.

Everything the suite writes by default (the MLflow store ``mlflow.db`` with its artifacts in
``mlartifacts/``, the Optuna storage ``mlartifacts/optuna.db``, the graph cache ``.cache/``,
tables and reports under ``results/``) goes to the **current working directory**, never
to the folder the package is installed in; environment variables and flags move each.
"""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# --- periodic graphs -------------------------------------------------------
CUTOFF = 8.0  # Å, neighbour cutoff radius
MAX_NEIGHBORS: int | None = 12  # per receiving atom, applied tie-inclusively; None = no cap
TIE_TOLERANCE = 1e-4  # Å, neighbours within this of the k-th distance are kept
PRIMITIVE_TOLERANCE = 0.01  # Å, site tolerance for finding the primitive cell (lattice loops)
DEFAULT_VARIANT = "multi_edge"

# --- data ------------------------------------------------------------------
DEFAULT_TASK = "matbench_jdft2d"
VENDORED_DATA_DIR = PROJECT_ROOT / "tasks" / "data"


def shared_data_dir() -> Path:
    """Root for data that is not vendored: ``$BENCH_DATA``, else ``../shared/data``."""
    return Path(os.environ.get("BENCH_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def cache_dir() -> Path:
    """On-disk cache (graphs): ``$BENCH_CACHE``, else ``.cache/`` in the working directory."""
    return Path(os.environ.get("BENCH_CACHE", Path.cwd() / ".cache"))

# --- training (one cell) ---------------------------------------------------
EPOCHS = 100
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 0.0
PATIENCE = 20  # epochs without validation improvement before early stopping
VAL_FRACTION = 0.1  # of the outer training fold, carved with the cell's seed
LOSS = "l1"  # on standardised targets (regression); classification uses BCE
LR_DECAY_FACTOR = 0.5  # ReduceLROnPlateau on validation loss
LR_DECAY_PATIENCE = 8
LR_SCHEDULE = "plateau"  # plateau | cosine | constant
VAL_WINDOW = 1  # trailing mean of the validation score watched by early stopping (1 = raw score)
DEVICE = "auto"  # cuda when available, else cpu
DETERMINISTIC = True  # torch deterministic kernels: a seed repeats a cell bit for bit on CPU

# --- budget pilot (bench pilot) ----------------------------------------------
PILOT_EPOCHS = 600  # no early stopping: the whole curve, to replay any stopping rule on it
PILOT_HOLDOUT_FRACTION = 0.2  # of the fold's training rows: scores the pilot; test rows are never used

# --- grid ------------------------------------------------------------------
FOLDS = (0, 1, 2, 3, 4)
SEEDS = (0,)
EXPERIMENT = "default"
RESULTS_DIR = Path("results")  # relative: under the working directory at the time of writing
#: Profiles ship inside the package (package data), so an installed copy finds them too.
PROFILES_DIR = Path(str(files("bench") / "profiles"))


# --- tuning (Optuna) ---------------------------------------------------------
# Off by default (0 trials): a profile that wants tuning sets tune.n_trials.
N_TRIALS = 0
TUNE_TIMEOUT: float | None = None  # seconds one worker may spend on one study; None = no limit
PRUNER = "median"  # median | successive_halving | none; on validation score per epoch
SAMPLER_SEED = 0  # TPE sampler seed
TUNE_SEED = 0  # seed of the inner train/validation split and of every trial's training
TUNE_VAL_FRACTION = 0.2  # inner validation share of the outer training fold
# A worker beats every HEARTBEAT_S; one silent for STALE_AFTER_S (six missed beats) is presumed
# dead and its cell or trial is taken over. Six beats leave room for a loaded machine or a
# briefly locked database (a beat is one tiny UPDATE) while a crashed worker on another
# machine costs a minute at most; a dead worker on the same machine is seen at once by its
# PID (bench.claims), without waiting.
HEARTBEAT_S = 10.0
STALE_AFTER_S = 60.0
#: Knobs every architecture shares; each architecture's registered search space is added.
SHARED_SEARCH_SPACE: dict[str, dict] = {
    "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "weight_decay": {"type": "categorical", "choices": [0.0, 1e-5, 1e-4, 1e-3]},
    "batch_size": {"type": "categorical", "choices": [16, 32, 64]},
    "cutoff": {"type": "categorical", "choices": [6.0, 8.0]},
    "max_neighbors": {"type": "categorical", "choices": [8, 12, 16]},
}


def optuna_storage(tracking: str | None = None) -> str:
    """Optuna storage (studies and cell claims): ``$OPTUNA_STORAGE``, else ``optuna.db``
    (SQLite) in the artifact folder of the MLflow store (``mlartifacts/``, ignored by git).
    """
    if os.environ.get("OPTUNA_STORAGE"):
        return os.environ["OPTUNA_STORAGE"]
    return f"sqlite:///{artifact_root(tracking or tracking_uri()) / 'optuna.db'}"


# --- executors -------------------------------------------------------------
EXECUTOR = "local"  # local (process pool) | ray
WORKERS: int | None = None  # local pool size; None = one per CPU core
THREADS_PER_WORKER = 1  # torch threads in each pool worker / Ray task


def tracking_uri() -> str:
    """MLflow store: ``$MLFLOW_TRACKING_URI``, else ``mlflow.db`` (SQLite) in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{Path.cwd() / 'mlflow.db'}")


def artifact_root(uri: str) -> Path:
    """Where a local store keeps run artifacts: ``mlartifacts/`` beside its SQLite file (else in
    the working directory, e.g. the Optuna storage of a grid tracked on a server)."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts"
    return Path.cwd() / "mlartifacts"
