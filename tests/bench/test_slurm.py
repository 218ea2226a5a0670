"""The SLURM recipe (docs/slurm.md), run locally: several processes stand in for the tasks of a job
array, each running docs/slurm/bench-array.sbatch (= nothing but `bench ablation --storage
--tracking-uri`) against a real PostgreSQL (studies + claims) and a real MLflow server. Slow."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
from ase.io import write as ase_write
from pymatgen.io.ase import AseAtomsAdaptor

from bench.cli import main
from bench.tracking import Tracker
from bench.tuning import SURPLUS
from tests import crystals
from tests.bench import test_servers as servers

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "slurm" / "bench-array.sbatch"
N_TASKS = 3
# the throwaway servers of tests/bench/test_servers.py
mlflow_server = servers.mlflow_server
postgres = servers.postgres


def _grid(experiment: str) -> list[str]:
    return ["--profile", "quick", "--experiment", experiment, "--tasks", "matbench_jdft2d", "--architectures", "cgcnn",
            "--variants", "distance,multi_edge", "--folds", "0,1", "--seeds", "0", "--set", "train.epochs=1",
            "--set", servers.TINY, "--set", servers.FAST_SPACE, "--set", "tune.n_trials=2"]


def test_job_array_of_independent_workers_shares_postgres_and_mlflow(postgres, mlflow_server, tmp_path):
    env = {**os.environ, "BENCH_STORAGE": postgres, "BENCH_TRACKING_URI": mlflow_server, "SLURM_ARRAY_JOB_ID": "4242",
           "SLURM_CPUS_PER_TASK": "1", "TMPDIR": str(tmp_path), "BENCH": f"{sys.executable} -m bench",
           "PYTHONPATH": str(ROOT)}  # this checkout's code, whatever the working directory
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("OPTUNA_STORAGE", None)
    procs = []
    for task_id in range(N_TASKS):
        log = open(tmp_path / f"bench-4242_{task_id}.out", "w")
        procs.append((subprocess.Popen(["bash", str(SCRIPT), *_grid("slurm")], cwd=tmp_path, stdout=log,
                                       stderr=subprocess.STDOUT, env={**env, "SLURM_ARRAY_TASK_ID": str(task_id)},
                                       start_new_session=True), log))
    try:
        for proc, _ in procs:
            proc.wait(timeout=1200)
    finally:
        for proc, log in procs:
            servers._stop(proc)
            log.close()
    logs = [(tmp_path / f"bench-4242_{i}.out").read_text() for i in range(N_TASKS)]
    assert [p.returncode for p, _ in procs] == [0] * N_TASKS, "\n\n".join(text[-3000:] for text in logs)
    assert all("bench array task" in text for text in logs)

    runs = Tracker("slurm", mlflow_server).search()
    cells = [r for r in runs if r.data.tags.get("bench.kind") == "cell"]
    keys = [r.data.tags["bench.cell_key"] for r in cells]
    assert len(keys) == len(set(keys)) == 2 + 2 * 2  # 2 dummy folds + 2 variants x 2 folds, none twice
    assert {r.info.status for r in cells} == {"FINISHED"}
    workers = {r.data.tags["bench.worker_pid"] for r in cells if r.data.tags["bench.architecture"] != "dummy"}
    print(f"model cells ran in {len(workers)} of {N_TASKS} array tasks")
    for name in optuna.get_all_study_names(postgres):  # one budget per study, however many workers joined it
        study = optuna.load_study(study_name=name, storage=postgres)
        counted = [t for t in study.trials if not t.user_attrs.get(SURPLUS)]
        assert [t.state for t in counted].count(optuna.trial.TrialState.COMPLETE) == 2 == len(counted)
        assert study.user_attrs["task"] == "matbench_jdft2d" and study.metric_names == ["validation MAE (meV/atom)"]

    # the report job's first step sees a finished grid; the models are usable through the server
    out = subprocess.run([sys.executable, "-m", "bench", "status", *_grid("slurm"), "--storage", postgres,
                          "--tracking-uri", mlflow_server], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1].startswith("done 6 |"), out.stdout + out.stderr
    ase_write(str(tmp_path / "new.extxyz"), [AseAtomsAdaptor.get_atoms(crystals.rocksalt())], format="extxyz")
    assert main(["predict", str(tmp_path / "new.extxyz"), "--experiment", "slurm", "--task", "matbench_jdft2d",
                 "--architecture", "cgcnn", "--variant", "distance", "--ensemble", "--tracking-uri", mlflow_server,
                 "--output", str(tmp_path / "pred.csv")]) == 0
    assert pd.read_csv(tmp_path / "pred.csv").n_models.tolist() == [2]
