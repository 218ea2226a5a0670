"""`pip install .` into a fresh virtual environment, then the quick profile from a folder outside
the checkout: profiles come from the package, the stores appear in the working directory. Slow.

Installing every dependency from PyPI would take minutes and the network, so the fresh
environment gets the project alone (``pip install --no-deps`` of a wheel built from this
checkout's files) and borrows the dependencies of the running interpreter's environment
through a ``.pth`` line (a plain path: the editable install of the checkout that environment
may hold is not activated through it, so ``bench`` is imported from the fresh environment).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert out.returncode == 0, f"{cmd}: rc {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _source_copy(dst: Path) -> Path:
    """The checkout's tracked and new (not ignored) files only: no build/, .venv or caches leak in."""
    files = _run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT).stdout
    for rel in filter(None, files.split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    return dst


def test_pip_install_outside_the_checkout_runs_the_quick_profile(tmp_path):
    src = _source_copy(tmp_path / "src")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
          str(src)])
    wheel = next((tmp_path / "dist").glob("crystal_periodicity_bench-*.whl"))
    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=True)
    py = fresh / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)])
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI", "OPTUNA_STORAGE", "BENCH_CACHE", "BENCH_RESULTS", "VIRTUAL_ENV")}
    where = _run([str(py), "-c", "import bench, tasks; print(bench.__file__); print(tasks.__file__)"],
                 cwd=work, env=env).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where), where  # the installed copy, not the checkout
    assert (site / "bench" / "profiles" / "quick.yaml").is_file()

    cmd = [str(fresh / "bin" / "bench"), "ablation", "--profile", "quick", "--tasks", "matbench_jdft2d",
           "--set", "train.epochs=1", "--architectures", "cgcnn", "--folds", "0", "--no-progress"]
    out = _run(cmd, cwd=work, env=env, timeout=1800)
    print(f"$ cd {work} && {' '.join(cmd[1:])}\n{out.stdout}{out.stderr[-2000:]}")
    assert (work / "mlflow.db").is_file() and (work / "mlartifacts" / "optuna.db").is_file()
    assert (work / "results" / "quick" / "tables" / "matbench_jdft2d_leaderboard.csv").is_file()
    assert any((work / ".cache").rglob("*")), "graph cache in the working directory"
    assert len(list((work / "mlartifacts" / "quick" / "models").glob("m-*/artifacts/weights.pt"))) == 3
    for name in ("mlflow.db", "mlartifacts", ".cache", "results"):  # nothing written into the install
        assert not (site / name).exists() and not (site.parent / name).exists()
    table = out.stdout[out.stdout.index("## matbench_jdft2d"):]
    assert all(f"| cgcnn | {v} |" in table for v in ("distance", "multi_edge", "lattice"))
