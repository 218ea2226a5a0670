"""``make perf``'s graph tables: build speed against other neighbour lists, growth, cache.

``python -m bench.graphs.benchmark`` writes to ``results/perf/``:

* ``graph_build.{csv,md}``: per task and variant, our whole build (batched, as the
  cache runs it; ``lattice`` with an empty primitive-translation cache, i.e. a first
  build) against the bare neighbour lists of vesin, pymatgen, matscipy and ASE at the
  same cutoff: structures/s, edges/s, time relative to vesin, and whether each peer's
  edge set equals ours (``same`` / ``boundary``: differences only within 1e-6 Å of the
  cutoff, where tools disagree on < versus <=).
* ``graph_growth.{csv,md}``: seconds per structure on rocksalt supercells of 8 to 2,016
  atoms, with the fitted exponent t ~ N^k over 400+ atoms.
* ``graph_cache.{csv,md}``: size and load time of a task's graphs as a pickled list of
  ``Data`` (the old cache) against the packed file.

All times are CPU seconds (``time.process_time``) of one thread, tools run side by side
in one process, alternating, the best of ``rounds`` rounds: the machine is shared, so
ratios between tools are the numbers to read. Nothing here is asserted by tests.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pymatgen.core import Lattice, Structure

from bench import defaults
from bench.graphs.cache import build_checked_chunk, build_task_graphs, chunk_bounds
from bench.graphs.pack import PackedGraphs
from bench.graphs.peers import PEERS, available_peers, compare_edges
from bench.graphs.variants import lattice as lattice_variant

TASKS = ("matbench_jdft2d", "matbench_phonons", "perovskites_cdvae")
VARIANTS = ("multi_edge", "distance", "lattice")
PEER_LIMITS = {"ase": 300}  # ASE is ~100x slower than vesin: timed and checked on the first 300
SUPERCELLS = ([1, 1, 1], [2, 1, 1], [2, 2, 1], [2, 2, 2], [3, 3, 2], [3, 3, 3], [4, 4, 3], [4, 4, 4],
              [5, 5, 4], [5, 5, 5], [6, 6, 5], [6, 6, 6], [7, 6, 6])


def best_of(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Minimum CPU seconds of each function over ``rounds`` alternating rounds."""
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - start)
    return best


def _build_all(structures, ids, variant: str, cutoff: float, cap: int | None, cold: bool = True) -> int:
    """Build every graph as the cache does; returns the number of edges."""
    if cold:
        lattice_variant.TRANSLATIONS.clear()
    edges = 0
    for a, b in chunk_bounds(structures):
        edges += int(build_checked_chunk(structures[a:b], ids[a:b], variant, cutoff, cap).num_edges.sum())
    return edges


def build_table(task_names=TASKS, variants=VARIANTS, cutoff: float = defaults.CUTOFF,
                cap: int | None = defaults.MAX_NEIGHBORS, rounds: int = 3, limit: int | None = None) -> pd.DataFrame:
    """Rows (task, tool, variant, n, seconds, structures/s, edges/s, x vesin, edge check)."""
    import tasks

    rows = []
    for task in task_names:
        data = tasks.get_task(task).load()
        structures, ids = data.structures[:limit], data.ids[:limit]
        peers = {}
        for name in available_peers():
            n = min(len(structures), PEER_LIMITS.get(name, len(structures)))
            prepare, run = PEERS[name](cutoff)
            inputs = [prepare(s) for s in structures[:n]]
            peers[name] = (n, run, inputs)
        fns: dict[str, Callable[[], object]] = {
            f"ours:{v}": (lambda v=v, s=structures, i=ids: _build_all(s, i, v, cutoff, cap)) for v in variants}
        fns.update({name: (lambda run=run, inputs=inputs: [run(x) for x in inputs])
                    for name, (_, run, inputs) in peers.items()})
        seconds = best_of(fns, rounds)
        vesin_per = seconds["vesin"] / peers["vesin"][0] if "vesin" in peers else float("nan")
        for v in variants:
            edges = _build_all(structures, ids, v, cutoff, cap, cold=False)
            t = seconds[f"ours:{v}"]
            rows.append(_row(task, "ours (build)", v, len(structures), t, edges, vesin_per, "oracle: see verify"))
        for name, (n, run, inputs) in peers.items():
            edges = sum(len(run(x)[0]) for x in inputs)
            checks = [compare_edges(s, run(x), cutoff) for s, x in zip(structures[:n], inputs)]
            check = f"{checks.count('same')} same, {checks.count('boundary')} boundary, " \
                    f"{checks.count('different')} different of {n}"
            rows.append(_row(task, name, "bare list", n, seconds[name], edges, vesin_per, check))
        print(f"graph build table: {task} done", flush=True)
    return pd.DataFrame(rows)


def _row(task, tool, variant, n, seconds, edges, vesin_per, check) -> dict:
    return {"task": task, "tool": tool, "variant": variant, "n_structures": n, "cpu_s": seconds,
            "structures_per_s": n / seconds, "edges_per_s": edges / seconds, "edges": edges,
            "time_vs_vesin": (seconds / n) / vesin_per, "edge_check": check}


def rocksalt(scaling: list[int]) -> Structure:
    """Conventional 8-atom NaCl (a = 5.64 Å) repeated ``scaling`` times."""
    fcc = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    base = Structure(Lattice.cubic(5.64), ["Na"] * 4 + ["Cl"] * 4, np.concatenate([fcc, (fcc + [0.5, 0, 0]) % 1]))
    return base.make_supercell(scaling)


def growth_table(variants=VARIANTS, cutoff: float = defaults.CUTOFF, cap: int | None = defaults.MAX_NEIGHBORS,
                 rounds: int = 3, fit_from: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seconds per structure against atoms on supercells, and the fitted exponents."""
    from vesin import NeighborList

    nl = NeighborList(cutoff=cutoff, full_list=True, n_threads=1)
    rows = []
    for scaling in SUPERCELLS:
        s = rocksalt(scaling)
        pos, cell = np.array(s.cart_coords), np.array(s.lattice.matrix)
        reps = max(1, 2000 // len(s))  # small cells: repeat so the clock resolves them
        fns = {"vesin": lambda p=pos, c=cell, r=reps: [nl.compute(p, c, True, "ijS") for _ in range(r)]}
        for v in variants:
            fns[f"ours:{v}"] = lambda v=v, s=s, r=reps: [_build_all([s], ["x"], v, cutoff, cap, cold=False)
                                                         for _ in range(r)]
        fns["ours:lattice (first build)"] = lambda s=s, r=reps: [
            _build_all([s], ["x"], "lattice", cutoff, cap, cold=True) for _ in range(max(1, r // 10))]
        best = best_of(fns, rounds)
        for tool, t in best.items():
            n_calls = max(1, reps // 10) if tool.endswith("(first build)") else reps
            rows.append({"atoms": len(s), "tool": tool, "seconds_per_structure": t / n_calls})
    frame = pd.DataFrame(rows)
    fits = []
    for tool, part in frame.groupby("tool", sort=False):
        big = part[part.atoms >= fit_from]
        k = np.polyfit(np.log(big.atoms), np.log(big.seconds_per_structure), 1)[0]
        k_all = np.polyfit(np.log(part.atoms), np.log(part.seconds_per_structure), 1)[0]
        fits.append({"tool": tool, f"exponent_{fit_from}_plus": k, "exponent_all_sizes": k_all})
    return frame, pd.DataFrame(fits)


def cache_table(task: str = "perovskites_cdvae", variant: str = "multi_edge") -> pd.DataFrame:
    """Bytes and load seconds: a pickled list of Data (the old format) against the packed file."""
    import tasks

    data = tasks.get_task(task).load()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.process_time()
        graphs = build_task_graphs(data.structures, data.ids, variant, defaults.CUTOFF, defaults.MAX_NEIGHBORS,
                                   data.sha256, cache_dir=tmp, progress=False, store="packed")
        build_s = time.process_time() - start
        packed = next((Path(tmp) / "graphs").glob("*.pt"))
        as_list = list(graphs)
        old = Path(tmp) / "list.pt"
        torch.save(as_list, old)
        del as_list, graphs
        loads = {
            "pickled list (old)": lambda: torch.load(old, weights_only=False),
            "packed: open (mmap)": lambda: _open(packed),
            "packed: open + every graph as Data": lambda: list(_open(packed)),
        }
        best = best_of(loads, 3)
        rows = [{"task": task, "variant": variant, "format": name, "bytes": os.path.getsize(
            old if name.startswith("pickled") else packed), "load_cpu_s": t, "build_cpu_s": build_s}
            for name, t in best.items()]
    frame = pd.DataFrame(rows)
    ref = frame.iloc[0]
    frame["smaller_x"] = ref.bytes / frame.bytes
    frame["faster_x"] = ref.load_cpu_s / frame.load_cpu_s
    return frame


def _open(path: Path) -> PackedGraphs:
    from bench.graphs.pack import load_packed

    return PackedGraphs(load_packed(path)[0])


def markdown(frame: pd.DataFrame) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"
        return f"{v:,}" if isinstance(v, (int, np.integer)) else str(v)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(fmt(v) for v in row) + " |"
                              for row in frame.itertuples(index=False)]) + "\n"


def write(frame: pd.DataFrame, out: Path, name: str, header: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.md").write_text(f"# {header}\n\n{markdown(frame)}")
    print(f"\n## {header}\n\n{markdown(frame)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="graph build, growth and cache tables -> results/perf/")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="first N structures of each task")
    parser.add_argument("--skip", default="", help="comma-separated: build,growth,cache,memory")
    parser.add_argument("--results-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.results_dir or defaults.RESULTS_DIR / "perf"
    skip = set(filter(None, args.skip.split(",")))
    note = f"cutoff {defaults.CUTOFF} Å, cap {defaults.MAX_NEIGHBORS}, one thread, CPU seconds, best of {args.rounds}"
    if "build" not in skip:
        write(build_table(args.tasks.split(","), rounds=args.rounds, limit=args.limit), out, "graph_build",
              f"Graph build against bare neighbour lists ({note})")
    if "growth" not in skip:
        frame, fits = growth_table(rounds=args.rounds)
        write(frame, out, "graph_growth", f"Build time against atoms, rocksalt supercells ({note})")
        write(fits, out, "graph_growth_fit", "Fitted exponents k of t ~ N^k")
    if "cache" not in skip:
        write(cache_table(), out, "graph_cache", "Graph cache: pickled list of Data against the packed file")
    if "memory" not in skip:
        write(memory_table(), out, "graph_memory", "Peak memory of a task's graphs: in memory, packed, on disk "
              "(growth of peak RSS after loading the task; the cap limits the process's data segment)")
    return 0



def _proc_kb(field: str) -> int:
    """A ``/proc/self/status`` field in KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _memory_child(task: str, variant: str, mode: str, cap_mb: float | None, out) -> None:
    """In a fresh process: build a task's graphs one way under an optional data-size cap."""
    import resource
    import sqlite3  # noqa: F401  (shared libraries are mapped before the cap, not counted under it)

    from torch_geometric.loader import DataLoader

    import tasks
    from bench.graphs import build_graph

    torch.set_num_threads(1)
    data = tasks.get_task(task).load()
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS counts from here (the task is loaded)
    rss0, data0 = _proc_kb("VmRSS"), _proc_kb("VmData")
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if cap_mb is not None:
        resource.setrlimit(resource.RLIMIT_DATA, ((data0 + int(cap_mb * 1024)) * 1024, hard))
    start, status = time.process_time(), "ok"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if mode == "list (old: in memory)":
                graphs = [build_graph(s, variant, defaults.CUTOFF, defaults.MAX_NEIGHBORS, structure_id=i)
                          for s, i in zip(data.structures, data.ids)]
            else:
                store = "disk" if mode.startswith("disk") else "packed"
                graphs = build_task_graphs(data.structures, data.ids, variant, defaults.CUTOFF,
                                           defaults.MAX_NEIGHBORS, data.sha256, cache_dir=tmp, progress=False,
                                           store=store, targets=data.targets)
                if mode == "disk + one training pass":
                    for _ in DataLoader(graphs.select(range(len(graphs))), batch_size=32, shuffle=True):
                        pass
            n = len(graphs)
    except MemoryError:
        status, n = "MemoryError", 0
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))  # the queue's feeder thread needs a stack
    out.put({"task": task, "variant": variant, "mode": mode, "data_cap_mb": cap_mb, "status": status,
             "graphs": n, "cpu_s": time.process_time() - start,
             "peak_rss_growth_mb": (_proc_kb("VmHWM") - rss0) / 1024})


MEMORY_MODES = ("list (old: in memory)", "packed", "disk (streamed)", "disk + one training pass")


def memory_table(task: str = "perovskites_cdvae", variant: str = "multi_edge",
                 modes=MEMORY_MODES, caps=(None, 64.0)) -> pd.DataFrame:
    """Peak RSS growth of each way of building a task's graphs, uncapped and under each cap (MB of data)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    rows = []
    for cap in caps:
        for mode in modes:
            queue = ctx.Queue()
            proc = ctx.Process(target=_memory_child, args=(task, variant, mode, cap, queue))
            proc.start()
            proc.join()
            rows.append(queue.get() if proc.exitcode == 0 else {"task": task, "variant": variant, "mode": mode,
                                                                 "data_cap_mb": cap,
                                                                 "status": f"exit {proc.exitcode}"})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


if __name__ == "__main__":
    raise SystemExit(main())
