"""Runner of the Matbench submission cpb_empnn_multi_edge (written by `bench export-matbench`).

Reproduces every cell with the crystal-periodicity-bench suite (`pip install -e .` in its checkout):
trains one model per Matbench fold from config.yaml and rewrites this submission from the
MLflow runs. Finished cells are never recomputed, so rerunning resumes.
"""
import sys
from pathlib import Path

from bench.cli import main as bench_main

HERE = Path(__file__).resolve().parent
GRID = ["--profile", str(HERE / "config.yaml"), "--tasks", "matbench_jdft2d,matbench_phonons", "--architectures", "empnn",
        "--variants", "multi_edge", "--seeds", "0", "--experiment", "quick"]

if __name__ == "__main__":
    code = bench_main(["ablation", *GRID])
    code = code or bench_main(["export-matbench", *GRID, "--architecture", "empnn", "--variant",
                                "multi_edge", "--seed", "0", "--name", "cpb_empnn_multi_edge", "--out", str(HERE.parent)])
    sys.exit(code)
