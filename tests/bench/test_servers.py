"""Real servers: an MLflow tracking server, PostgreSQL as the shared Optuna storage, a local
Ray cluster. Each is started by its fixture on a free localhost port and killed in teardown
(also when a test fails). Slow: run with ``make test-slow``."""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from bench.claims import ClaimStore
from bench.cli import main
from bench.config import load_config
from bench.status import grid_status
from bench.tracking import Tracker
from bench.tuning import SURPLUS

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
TINY = "hparams={cgcnn: {hidden: 8, num_layers: 1, fc_hidden: 8, num_fc: 1}}"
FAST_SPACE = "tune.space={cutoff: null, max_neighbors: null, batch_size: {type: categorical, choices: [64]}}"


def _grid_args(experiment: str, uri: str, storage: str, variants: str, seeds: str, *extra: str) -> list[str]:
    return ["ablation", "--profile", "quick", "--tasks", "matbench_jdft2d", "--architectures", "cgcnn", "--experiment", experiment, "--tracking-uri", uri, "--storage", storage,
            "--folds", "0", "--seeds", seeds, "--variants", variants, "--set", "train.epochs=1", "--set", TINY,
            "--set", FAST_SPACE, "--set", "tune.n_trials=2", "--no-progress", *extra]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """End a server started in its own session: its whole process group, then the leader."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _kill_leftovers(marker: str) -> None:
    """Kill processes of ours that left the process group (their command line names ``marker``)."""
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            text = Path(cmdline).read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in text:
            try:
                os.kill(int(cmdline.split("/")[2]), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture
def mlflow_server(tmp_path):
    port = _free_port()
    log = open(tmp_path / "mlflow-server.log", "w")
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server-artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if urllib.request.urlopen(f"{url}/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(tmp_path / 'mlflow-server.log').read_text()[-2000:]}")
            time.sleep(1)
        yield url
    finally:
        _stop(proc)
        log.close()


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL cluster (Debian's package) on a free port; yields its SQLAlchemy URL."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries not found: apt-get install -y postgresql")
    pytest.importorskip("psycopg2", reason="psycopg2 missing: pip install -e '.[cluster]'")
    as_user: list[str] = []
    root = tempfile.mkdtemp(prefix="bench-pg-")
    if os.geteuid() == 0:  # the server refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    data, port = os.path.join(root, "data"), _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True)  # noqa: E731
    started = False
    try:
        run(initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        run(pg_ctl, "-D", data, "-l", os.path.join(root, "log"), "-w", "-t", "60",
            "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=100", "start")
        started = True
        run(_pg_bin("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "bench")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/bench"
    finally:
        if started:
            subprocess.run([*as_user, pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True)
        _kill_leftovers(data)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def ray_cluster():
    """A local Ray head started the way a cluster's is (``ray start --head``); yields its address."""
    pytest.importorskip("ray", reason="Ray missing: pip install -e '.[cluster]'")
    import ray

    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths have a length limit
    proc = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", "--port", str(port), "--num-cpus", "2",
         "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", temp,
         "--object-store-memory", str(200 * 1024**2)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        deadline = time.monotonic() + 180
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("ray head did not start")
            time.sleep(1)
        time.sleep(3)  # the raylet registers after the GCS port opens
        yield f"127.0.0.1:{port}"
    finally:
        ray.shutdown()
        _stop(proc)
        _kill_leftovers(temp)
        shutil.rmtree(temp, ignore_errors=True)


def test_mlflow_server_receives_a_tuned_cell(mlflow_server, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert main(_grid_args("srv", mlflow_server, storage, "distance", "0", "--workers", "1",
                           "--results-dir", str(tmp_path / "res"))) == 0
    client = MlflowClient(mlflow_server)
    runs = Tracker("srv", mlflow_server).search()
    kinds = sorted(r.data.tags.get("bench.kind") for r in runs)
    assert kinds == ["cell", "cell", "parent", "trial", "trial"]
    parent = next(r for r in runs if r.data.tags["bench.kind"] == "parent")
    final = next(r for r in runs if r.data.tags["bench.kind"] == "cell" and r.data.tags["bench.variant"] == "distance")
    assert final.data.tags["mlflow.parentRunId"] == parent.info.run_id
    path = client.download_artifacts(final.info.run_id, "predictions.csv", str(tmp_path))
    assert Path(path).read_text().startswith("id,y_true,y_pred")
    assert (tmp_path / "server-artifacts").exists()  # artifacts went through the server


def test_workers_sharing_postgres_and_mlflow_run_each_cell_once(postgres, mlflow_server, tmp_path):
    """Two concurrent `bench ablation` processes on one grid: every final cell runs exactly once."""
    args = _grid_args("pg", mlflow_server, postgres, "distance,multi_edge", "0,1", "--workers", "1",
                      "--results-dir", str(tmp_path / "res"))
    procs = [subprocess.Popen([sys.executable, "-m", "bench", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True) for _ in range(2)]
    try:
        outs = [p.communicate(timeout=600)[0] for p in procs]
    finally:
        for p in procs:
            _stop(p)
    assert [p.returncode for p in procs] == [0, 0], "\n\n".join(o[-3000:] for o in outs)

    runs = Tracker("pg", mlflow_server).search()
    cells = [r for r in runs if r.data.tags.get("bench.kind") == "cell"]
    keys = [r.data.tags["bench.cell_key"] for r in cells]
    assert len(keys) == len(set(keys)) == 5  # dummy + 2 variants x 2 seeds, none run twice
    assert {r.info.status for r in cells} == {"FINISHED"}  # none lost
    assert len([r for r in runs if r.data.tags.get("bench.kind") == "parent"]) == 2
    cfg = load_config("quick", ["experiment=pg", "tasks=[matbench_jdft2d]", "architectures=[cgcnn]", "folds=[0]", "seeds=[0, 1]", "variants=[distance, multi_edge]",
                                "train.epochs=1", TINY, FAST_SPACE, "tune.n_trials=2"])
    frame = grid_status(cfg, mlflow_server, postgres)
    assert list(frame.state) == ["done"] * 5
    for name in optuna.get_all_study_names(postgres):  # both workers filled exactly one budget per study
        trials = optuna.load_study(study_name=name, storage=postgres).trials
        counted = [t.state for t in trials if not t.user_attrs.get(SURPLUS)]
        assert counted.count(optuna.trial.TrialState.COMPLETE) == 2 and len(counted) == 2
    store = ClaimStore(postgres)  # claims are timed by the server's clock
    with store.engine.connect() as conn:
        assert store.now(conn) == pytest.approx(time.time(), abs=5.0)


def test_ray_executor_runs_units_as_ray_tasks(ray_cluster, tmp_path):
    uri, storage = f"sqlite:///{tmp_path / 'mlflow.db'}", f"sqlite:///{tmp_path / 'optuna.db'}"
    assert main(_grid_args("ray", uri, storage, "distance,lattice", "0", "--executor", "ray",
                           "--ray-address", ray_cluster, "--results-dir", str(tmp_path / "res"))) == 0
    cells = Tracker("ray", uri).search("tags.`bench.kind` = 'cell' and attributes.status = 'FINISHED'")
    assert sorted(r.data.tags["bench.variant"] for r in cells) == ["distance", "lattice", "none"]
    # the model cells ran in Ray workers, not in this process
    assert all(r.data.tags.get("bench.worker_pid") not in (None, str(os.getpid()))
               for r in cells if r.data.tags["bench.variant"] != "none")
