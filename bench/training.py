"""Train one model on one fold: seeded split, target scaling, early stopping.

Plain functions over lists of graphs; tracking and the grid live elsewhere.
"""
from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field
from collections.abc import Callable

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from tqdm.auto import tqdm

import architectures
from bench import defaults, interrupts
from bench.config import TrainConfig
from bench.metrics import CLASSIFICATION, REGRESSION, evaluate

#: Behaviour version of this module (split, scaling, optimiser, early stopping, prediction):
#: part of every model cell's key. Bump it whenever a change can change a fit's losses or
#: weights; tests/bench/test_fingerprint_known_answers.py pins a 2-epoch fit and fails
#: until the version is bumped and the pinned value updated.
# "2": monitored score (trailing mean, cfg.val_window), lr_schedule; cells fit avg_neighbors.
TRAINING_CODE_VERSION = "2"


class ModelOutputError(Exception):
    """A model's output is not ``[num_graphs, out_dim]`` or not finite (a plugin bug, usually).

    Not a ValueError: Optuna must not swallow it as one failed trial among others.
    """


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def configure_torch(num_threads: int | None, device: str) -> torch.device:
    """Set torch's CPU threads (None: :data:`bench.defaults.THREADS_PER_WORKER`, i.e. 1) and
    flush denormal floats; return the device.

    Every path that trains calls this (``bench train``, a grid's main process, pool workers,
    Ray tasks, trials, ``bench perf``), so a cell never runs with torch's machine-dependent
    default thread count: threads change the order of floating-point sums, hence results,
    and on a loaded machine a thread per core makes training many times slower.
    """
    torch.set_num_threads(num_threads or defaults.THREADS_PER_WORKER)
    # Radial bases (Gaussians far from their centre) underflow into denormal floats, on
    # which x86 CPUs run matmuls and exp about 5x slower (CGCNN on jdft2d: 47 -> 239
    # structures/s); flushing them to zero changes values below 1e-38 only.
    torch.set_flush_denormal(True)
    return resolve_device(device)


def split_train_val(indices: np.ndarray, val_fraction: float, seed: int,
                    groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Carve a validation split from a training fold with the cell's seed -> (train, val).

    ``groups`` ([n_rows] labels for the whole task, e.g. the representations of one
    crystal in a synthetic probe) keeps every group on one side, so validation never
    sees another cell of a training crystal.
    """
    indices = np.asarray(indices)
    if len(indices) < 2:
        raise ValueError(f"a training fold needs at least 2 structures, got {len(indices)}")
    rng = np.random.default_rng(seed)
    if groups is None:
        perm = rng.permutation(len(indices))
        n_val = min(max(1, int(round(val_fraction * len(indices)))), len(indices) - 1)
        return np.sort(indices[perm[n_val:]]), np.sort(indices[perm[:n_val]])
    labels = np.asarray(groups)[indices]
    unique = rng.permutation(np.unique(labels))
    if len(unique) < 2:
        raise ValueError(f"a training fold needs at least 2 groups, got {len(unique)}")
    n_val = min(max(1, int(round(val_fraction * len(unique)))), len(unique) - 1)
    in_val = np.isin(labels, unique[:n_val])
    return np.sort(indices[~in_val]), np.sort(indices[in_val])


@dataclass(frozen=True)
class TargetScaler:
    """Standardise regression targets with statistics of the training part only."""

    mean: float
    std: float

    @classmethod
    def fit(cls, targets: np.ndarray, problem_type: str) -> TargetScaler:
        if problem_type == CLASSIFICATION:
            return cls(0.0, 1.0)
        std = float(np.std(targets))
        return cls(float(np.mean(targets)), std if std > 0 else 1.0)

    def transform(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.mean) / self.std

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std + self.mean


@dataclass
class FitResult:
    """What :func:`fit` returns. ``history`` has one dict per epoch."""

    model: torch.nn.Module
    scaler: TargetScaler
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val: float = float("inf")
    train_seconds: float = 0.0  # wall time of fit, validation included
    structures_per_second: float = 0.0  # training throughput (optimisation steps only)
    n_params: int = 0
    stopped_early: bool = False  # True when patience ended the run before cfg.epochs


def _with_targets(graphs: list[Data], targets: np.ndarray) -> list[Data]:
    if hasattr(graphs, "with_targets"):  # a lazy view of an on-disk store: targets travel with it
        return graphs.with_targets(torch.as_tensor(np.asarray(targets, dtype=np.float32)))
    out = []
    for g, y in zip(graphs, targets):
        g = copy.copy(g)
        g.y = torch.tensor([float(y)], dtype=torch.float32)
        out.append(g)
    return out


def check_output(out: torch.Tensor, num_graphs: int, out_dim: int, architecture: str, where: str) -> None:
    """Raise :class:`ModelOutputError` unless ``out`` is a finite ``[num_graphs, out_dim]`` tensor."""
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != (num_graphs, out_dim):
        raise ModelOutputError(f"{where}: architecture {architecture!r} returned shape {shape} for a batch of "
                               f"{num_graphs} graphs; a model must return [num_graphs, out_dim] = "
                               f"[{num_graphs}, {out_dim}]")
    if not bool(torch.isfinite(out).all()):
        raise ModelOutputError(f"{where}: architecture {architecture!r} returned non-finite values (NaN or inf) "
                               f"on the first batch: {out.detach().flatten()[:4].tolist()}")


def _loss_fn(problem_type: str, loss: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if problem_type == CLASSIFICATION:
        return torch.nn.functional.binary_cross_entropy_with_logits
    return torch.nn.functional.l1_loss if loss == "l1" else torch.nn.functional.mse_loss


@torch.no_grad()
def predict(model: torch.nn.Module, graphs: list[Data], scaler: TargetScaler, problem_type: str,
            batch_size: int, device: torch.device) -> np.ndarray:
    """Predictions in target units (regression) or class-1 probabilities (classification): [n]."""
    model.eval()
    outs = []
    for batch in DataLoader(graphs, batch_size=batch_size, shuffle=False):
        interrupts.checkpoint()
        out = model(batch.to(device)).squeeze(-1)
        outs.append(torch.sigmoid(out) if problem_type == CLASSIFICATION else scaler.inverse(out))
    return torch.cat(outs).double().cpu().numpy() if outs else np.zeros(0)


def fit(
    architecture: str,
    hparams: dict,
    train_graphs: list[Data],
    train_targets: np.ndarray,
    val_graphs: list[Data],
    val_targets: np.ndarray,
    problem_type: str,
    cfg: TrainConfig,
    seed: int,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = True,
    desc: str = "train",
    extra_eval: dict[str, tuple[list[Data], np.ndarray]] | None = None,
) -> FitResult:
    """Train ``architecture`` with early stopping on validation; return the best model.

    The validation score is MAE in target units (regression) or BCE (classification).
    Early stopping, the plateau schedule and the choice of the best epoch all watch the
    *monitored* score: the trailing mean of the last ``cfg.val_window`` validation scores
    (1 = the raw score), which keeps a small, noisy validation split from stopping a run
    on noise. ``on_epoch(epoch, metrics)`` is called after every epoch (for tracking /
    pruning). ``extra_eval`` ({name: (graphs, targets)}) adds ``<name>_score`` per epoch
    (the budget pilot's held-out rows; never test rows of a cell).
    """
    if problem_type not in (REGRESSION, CLASSIFICATION):
        raise ValueError(f"unknown problem type {problem_type!r}")
    seed_everything(seed)
    device = configure_torch(cfg.num_threads, cfg.device)
    # CPU scatter-add backward is not bit-repeatable across runs without this; on CUDA a
    # few kernels have no deterministic version, so warn there instead of failing.
    torch.use_deterministic_algorithms(cfg.deterministic, warn_only=device.type == "cuda")
    scaler = TargetScaler.fit(np.asarray(train_targets), problem_type)
    model = architectures.create(architecture, out_dim=1, **hparams).to(device)
    loss_fn = _loss_fn(problem_type, cfg.loss)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = _scheduler(optimizer, cfg)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(_with_targets(train_graphs, train_targets), batch_size=cfg.batch_size,
                        shuffle=True, generator=generator)
    result = FitResult(model=model, scaler=scaler, n_params=architectures.count_parameters(model))
    best_state = copy.deepcopy(model.state_dict())
    stale = 0
    recent: list[float] = []  # validation scores so far (the monitored score is their trailing mean)
    seen = 0
    train_time = 0.0
    start = time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc=desc, leave=False, disable=not progress, dynamic_ncols=True)
    for epoch in bar:
        model.train()
        total, count = 0.0, 0
        epoch_start = time.perf_counter()
        for batch in loader:
            interrupts.checkpoint()  # a stop-now interrupt swallowed somewhere still ends the cell here
            batch = batch.to(device)
            optimizer.zero_grad(set_to_none=True)
            target = batch.y if problem_type == CLASSIFICATION else scaler.transform(batch.y)
            out = model(batch)
            if seen == 0 and count == 0:  # first batch: a wrong shape would broadcast silently
                check_output(out, batch.num_graphs, 1, architecture, desc)
            loss = loss_fn(out.squeeze(-1), target)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * batch.num_graphs
            count += batch.num_graphs
        seen += count
        train_time += time.perf_counter() - epoch_start
        val_pred = predict(model, val_graphs, scaler, problem_type, cfg.batch_size, device)
        val_score = _validation_score(problem_type, np.asarray(val_targets), val_pred)
        recent.append(val_score)
        monitored = float(np.mean(recent[-cfg.val_window:]))
        metrics = {"train_loss": total / max(count, 1), "val_score": val_score, "lr": optimizer.param_groups[0]["lr"]}
        if cfg.val_window > 1:
            metrics["val_monitored"] = monitored
        for name, (graphs, targets) in (extra_eval or {}).items():
            pred = predict(model, graphs, scaler, problem_type, cfg.batch_size, device)
            metrics[f"{name}_score"] = _validation_score(problem_type, np.asarray(targets), pred)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(monitored)
        elif scheduler is not None:
            scheduler.step()
        result.history.append(metrics)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        if monitored < result.best_val:
            result.best_val, result.best_epoch, stale = monitored, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        bar.set_postfix(loss=f"{metrics['train_loss']:.3f}", val=f"{val_score:.3f}", best=f"{result.best_val:.3f}")
        if stale >= cfg.patience:
            result.stopped_early = epoch + 1 < cfg.epochs
            break
    result.train_seconds = time.perf_counter() - start
    result.structures_per_second = seen / train_time if train_time > 0 else 0.0
    model.load_state_dict(best_state)
    return result


def _scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig):
    """The learning-rate schedule of ``cfg.lr_schedule``: ``plateau`` (decay by ``lr_decay_factor``
    after ``lr_decay_patience`` epochs without a better monitored score), ``cosine`` (to zero over
    ``cfg.epochs``) or ``constant`` (None)."""
    if cfg.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.lr_decay_factor,
                                                          patience=cfg.lr_decay_patience)
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    return None


def _validation_score(problem_type: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Lower is better: MAE (regression) or binary cross-entropy (classification)."""
    if problem_type == REGRESSION:
        return evaluate(REGRESSION, y_true, y_pred)["mae"]
    p = np.clip(y_pred, 1e-7, 1 - 1e-7)
    return float(-np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)))
