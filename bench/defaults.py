"""Every default of the suite, in one place.

Profiles (``configs/*.yaml``) and CLI flags override these; nothing else in the code
base hard-codes a default value for them.
"""
from __future__ import annotations

import os
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
    """On-disk cache (graphs): ``$BENCH_CACHE``, else ``.cache/`` in the project."""
    return Path(os.environ.get("BENCH_CACHE", PROJECT_ROOT / ".cache"))

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
DEVICE = "auto"  # cuda when available, else cpu
DETERMINISTIC = True  # torch deterministic kernels: a seed repeats a cell bit for bit on CPU

# --- grid ------------------------------------------------------------------
FOLDS = (0, 1, 2, 3, 4)
SEEDS = (0,)
EXPERIMENT = "default"
RESULTS_DIR = PROJECT_ROOT / "results"
PROFILES_DIR = PROJECT_ROOT / "configs"


def tracking_uri() -> str:
    """MLflow store: ``$MLFLOW_TRACKING_URI``, else a SQLite file in the project."""
    return os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}")


def artifact_root(uri: str) -> Path:
    """Where a local store keeps run artifacts: ``mlartifacts/`` beside its SQLite file."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).parent / "mlartifacts"
    return PROJECT_ROOT / "mlartifacts"
