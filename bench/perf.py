"""Speed and memory of every architecture on real graphs: ``bench perf`` / ``make perf``.

Each (architecture, variant) is measured in a fresh process (so peak memory is its
own): the default model trains for a few passes over the first ``n_structures`` graphs
of a task with AdamW, as a cell would (same loss, flush-denormal, thread count), after
one warm-up pass. A training step includes its data path: the graphs (read from the
packed cache into memory, as a cell does) are collated by PyG's ``DataLoader`` inside
the timed loop; the share of the step spent there is ``data_path_percent``, and
``lazy_data_path_percent`` the same share when each batch is read from the packed
cache instead (``graphs.select(rows)``). Results go to ``results/perf/<device>.{csv,md}``;
the graph build tables are ``bench.graphs.benchmark``'s. Timings are never asserted in tests.
"""
from __future__ import annotations

import multiprocessing as mp
import platform
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from bench import defaults


@dataclass
class PerfResult:
    architecture: str
    variant: str
    device: str
    threads: int
    n_params: int
    n_structures: int
    batch_size: int
    train_structures_per_s: float
    predict_structures_per_s: float
    peak_memory_mb: float  # CUDA: max allocated; CPU: growth of the process's peak RSS
    collate_ms_per_batch: float  # Batch.from_data_list of graphs held in memory, per batch
    data_path_percent: float  # of a training step (forward, backward, optimiser, collation)
    lazy_data_path_percent: float  # the same when every batch is read from the packed cache (select())


def _rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS
    scale = 1.0 if platform.system() == "Darwin" else 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def measure(architecture: str, variant: str, task: str, n_structures: int, batch_size: int, passes: int,
            threads: int, device: str) -> PerfResult:
    """Train/predict throughput (structures/s) and peak memory of one default model."""
    import numpy as np
    import torch
    from torch_geometric.loader import DataLoader

    import architectures
    import tasks
    from bench.graphs import build_task_graphs
    from bench.training import configure_torch

    dev = configure_torch(threads, device)
    data = tasks.get_task(task).load()
    graphs = build_task_graphs(data.structures, data.ids, variant, defaults.CUTOFF, defaults.MAX_NEIGHBORS,
                               data.sha256, progress=False)
    rows = np.arange(min(n_structures, len(graphs)))
    y = np.asarray(data.targets[: len(rows)], dtype=np.float32)
    y = (y - y.mean()) / (y.std() or 1.0)
    lazy = graphs.select(rows).with_targets(torch.from_numpy(y))  # each batch read from the cache
    in_memory = list(lazy)  # what a cell trains on: the rows' graphs as Data, collated per step
    loader = DataLoader(in_memory, batch_size=batch_size, shuffle=False)
    torch.manual_seed(0)
    model = architectures.create(architecture, out_dim=1, cutoff=defaults.CUTOFF).to(dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    base_mb = _rss_mb()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    def train_pass() -> None:
        model.train()
        for batch in loader:  # collation is part of the step
            batch = batch.to(dev)
            optimizer.zero_grad()
            loss = torch.nn.functional.l1_loss(model(batch).squeeze(-1), batch.y)
            loss.backward()
            optimizer.step()

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    train_pass()  # warm-up: allocator, caches, lazy init
    sync()
    start = time.perf_counter()
    for _ in range(passes):
        train_pass()
    sync()
    train_time = time.perf_counter() - start
    def data_time(source) -> tuple[float, int]:
        start, n = time.perf_counter(), 0
        for _ in range(passes):
            for batch in DataLoader(source, batch_size=batch_size, shuffle=False):
                batch.to(dev)
                n += 1
        return time.perf_counter() - start, n

    collate_time, n_batches = data_time(in_memory)
    lazy_time, _ = data_time(lazy)
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        for batch in loader:
            model(batch.to(dev))
    sync()
    predict_rate = len(rows) / (time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else _rss_mb() - base_mb
    return PerfResult(architecture, variant, str(dev), threads, architectures.count_parameters(model), len(rows),
                      batch_size, passes * len(rows) / train_time, predict_rate, peak,
                      1e3 * collate_time / max(n_batches, 1), 100 * collate_time / train_time,
                      100 * lazy_time / (train_time - collate_time + lazy_time))


def _worker(args: tuple, queue) -> None:
    try:
        queue.put(asdict(measure(*args)))
    except Exception as err:  # reported per row, the others still run
        queue.put({"architecture": args[0], "variant": args[1], "error": f"{type(err).__name__}: {err}"})


def run_perf(architectures_: list[str], variants: list[str], task: str = defaults.DEFAULT_TASK,
             n_structures: int = 256, batch_size: int = defaults.BATCH_SIZE, passes: int = 3, threads: int = 1,
             device: str = "cpu", out_dir: Path | None = None) -> pd.DataFrame:
    """Measure every (architecture, variant), each in a fresh process; write CSV and Markdown."""
    ctx = mp.get_context("spawn")
    rows = []
    for arch in architectures_:
        for variant in variants:
            queue = ctx.Queue()
            proc = ctx.Process(target=_worker, args=((arch, variant, task, n_structures, batch_size, passes,
                                                      threads, device), queue))
            proc.start()
            row = queue.get()
            proc.join()
            rows.append(row)
            print(_line(row), flush=True)
    frame = pd.DataFrame(rows)
    out = Path(out_dir or defaults.RESULTS_DIR / "perf")
    out.mkdir(parents=True, exist_ok=True)
    label = "cuda" if device.startswith("cuda") else f"cpu-{threads}thread"
    frame.to_csv(out / f"{label}.csv", index=False)
    header = (f"# Throughput on {platform.node() or 'this machine'} ({label}), task {task}, first {n_structures} "
              f"structures, batch {batch_size}, {passes} timed passes after one warm-up; a step includes "
              f"collation (data_path_percent; lazy_: also reading every batch from the packed cache)\n\n")
    (out / f"{label}.md").write_text(header + _markdown(frame))
    return frame


def _markdown(frame: pd.DataFrame) -> str:
    cells = [[f"{v:.1f}" if isinstance(v, float) else str(v) for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells]) + "\n"


def _line(row: dict) -> str:
    if "error" in row:
        return f"{row['architecture']:<10} {row['variant']:<11} ERROR {row['error']}"
    return (f"{row['architecture']:<10} {row['variant']:<11} {row['n_params']:>8} params  "
            f"train {row['train_structures_per_s']:8.1f}/s  predict {row['predict_structures_per_s']:8.1f}/s  "
            f"peak {row['peak_memory_mb']:7.1f} MB  data path {row['data_path_percent']:4.1f} %")
